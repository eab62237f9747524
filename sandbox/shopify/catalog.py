"""Static reference data for the seeded store: product templates, locales, countries, names."""

from __future__ import annotations

# (title, product_type, vendor, consumable days of supply or None for durables, [(variant title, price cents)])
PRODUCT_TEMPLATES: tuple[tuple[str, str, str, int | None, tuple[tuple[str, int], ...]], ...] = (
    ("Single-Origin Coffee Beans", "Coffee", "Hill Roasters", 30, (("250 g", 1290), ("500 g", 2290), ("1 kg", 3990))),
    ("Espresso Blend", "Coffee", "Hill Roasters", 30, (("250 g", 1190), ("1 kg", 3690))),
    ("Decaf Ground Coffee", "Coffee", "Hill Roasters", 30, (("250 g", 1250),)),
    ("Daily Multivitamin", "Vitamins", "Vitalis", 60, (("60 capsules", 1990), ("120 capsules", 3490))),
    ("Vitamin D3 + K2", "Vitamins", "Vitalis", 60, (("60 drops", 1590),)),
    ("Omega-3 Fish Oil", "Vitamins", "Vitalis", 60, (("90 softgels", 2490),)),
    ("Razor Blade Refills", "Shaving", "Keen Edge", 45, (("4-pack", 1490), ("8-pack", 2690))),
    ("Shaving Cream", "Shaving", "Keen Edge", 45, (("150 ml", 890),)),
    ("Grain-Free Dog Food", "Pet Food", "Happy Paws", 30, (("2 kg", 2490), ("6 kg", 5990))),
    ("Indoor Cat Food", "Pet Food", "Happy Paws", 30, (("1.5 kg", 1990), ("4 kg", 4290))),
    ("Green Tea Leaves", "Tea", "Leaf & Co", 30, (("100 g", 990), ("250 g", 2190))),
    ("Whey Protein", "Supplements", "Vitalis", 30, (("Vanilla 1 kg", 3490), ("Chocolate 1 kg", 3490))),
    ("Toothbrush Heads", "Oral Care", "Bright Smile", 90, (("4-pack", 1890),)),
    ("Water Filter Cartridge", "Home", "Pure Flow", 60, (("Single", 1490), ("3-pack", 3990))),
    ("Burr Coffee Grinder", "Coffee Equipment", "Hill Roasters", None, (("Black", 8900), ("Steel", 9900))),
    ("Pour-Over Kettle", "Coffee Equipment", "Hill Roasters", None, (("0.8 l", 5490),)),
    ("Safety Razor Handle", "Shaving", "Keen Edge", None, (("Chrome", 3490), ("Brass", 4490))),
    ("Orthopedic Pet Bed", "Pet Supplies", "Happy Paws", None, (("M", 6990), ("L", 8990))),
    ("Insulated Water Bottle", "Home", "Pure Flow", None, (("500 ml", 2490), ("750 ml", 2990))),
    ("Filter Jug", "Home", "Pure Flow", None, (("2.4 l", 3290),)),
)

# Custom collections: title, handle and the titles of their products (a collection crosses product types, and the
# kettle is in two).
COLLECTION_TEMPLATES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Coffee Corner", "coffee-corner", ("Single-Origin Coffee Beans", "Espresso Blend", "Burr Coffee Grinder",
                                        "Pour-Over Kettle")),
    ("Daily Wellness", "daily-wellness", ("Daily Multivitamin", "Omega-3 Fish Oil", "Whey Protein",
                                          "Green Tea Leaves")),
    ("Pet Care", "pet-care", ("Grain-Free Dog Food", "Orthopedic Pet Bed")),
    ("Gift Ideas", "gift-ideas", ("Pour-Over Kettle", "Insulated Water Bottle", "Safety Razor Handle")),
)

# locale -> (weight, [(country, time zone, weight)], first names, last names, email domain)
LOCALES: dict[str, tuple[int, tuple[tuple[str, str, int], ...], tuple[str, ...], tuple[str, ...]]] = {
    "en": (40, (("US", "America/New_York", 4), ("US", "America/Chicago", 2), ("US", "America/Los_Angeles", 3),
                ("GB", "Europe/London", 3), ("CA", "America/Toronto", 1), ("AU", "Australia/Sydney", 1)),
           ("James", "Mary", "Olivia", "Liam", "Emma", "Noah", "Ava", "Ethan", "Grace", "Henry"),
           ("Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Clarke", "Walker")),
    "de": (10, (("DE", "Europe/Berlin", 6), ("AT", "Europe/Vienna", 2), ("CH", "Europe/Zurich", 1)),
           ("Lukas", "Anna", "Jonas", "Lena", "Felix", "Sophie", "Jürgen", "Käthe"),
           ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker")),
    "fr": (8, (("FR", "Europe/Paris", 6), ("BE", "Europe/Brussels", 1), ("CA", "America/Toronto", 1)),
           ("Camille", "Louis", "Chloé", "Hugo", "Léa", "Gabriel", "Zoé"),
           ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Lefèvre")),
    "es": (7, (("ES", "Europe/Madrid", 4), ("MX", "America/Mexico_City", 3)),
           ("Lucía", "Hugo", "Martina", "Mateo", "Sofía", "Alejandro"),
           ("García", "Fernández", "López", "Martínez", "Sánchez", "Pérez")),
    "it": (5, (("IT", "Europe/Rome", 1),),
           ("Giulia", "Leonardo", "Francesca", "Alessandro", "Chiara"),
           ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi")),
    "pt-BR": (5, (("BR", "America/Sao_Paulo", 1),),
              ("João", "Maria", "Pedro", "Ana", "Lucas", "Beatriz"),
              ("Silva", "Santos", "Oliveira", "Souza", "Costa")),
    "ja": (5, (("JP", "Asia/Tokyo", 1),),
           ("陽翔", "結衣", "蓮", "さくら", "大和", "葵"),
           ("佐藤", "鈴木", "高橋", "田中", "伊藤")),
    "zh-CN": (4, (("CN", "Asia/Shanghai", 1),),
              ("伟", "芳", "娜", "敏", "静", "磊"),
              ("王", "李", "张", "刘", "陈")),
    "zh-TW": (2, (("TW", "Asia/Taipei", 1),),
              ("家豪", "怡君", "志明", "淑芬"),
              ("陳", "林", "黃", "張")),
    "ar": (4, (("SA", "Asia/Riyadh", 2), ("AE", "Asia/Dubai", 2), ("EG", "Africa/Cairo", 1)),
           ("محمد", "فاطمة", "أحمد", "مريم", "علي", "نور"),
           ("العلي", "الحسن", "السيد", "الخطيب")),
    "nl": (3, (("NL", "Europe/Amsterdam", 1),),
           ("Daan", "Emma", "Sem", "Julia", "Lieke"),
           ("de Jong", "Jansen", "de Vries", "Bakker")),
    "pl": (2, (("PL", "Europe/Warsaw", 1),),
           ("Jakub", "Zuzanna", "Kacper", "Łucja"),
           ("Nowak", "Kowalski", "Wiśniewski")),
    "tr": (2, (("TR", "Europe/Istanbul", 1),),
           ("Yusuf", "Zeynep", "Emir", "Elif"),
           ("Yılmaz", "Kaya", "Demir", "Şahin")),
}

# Latin spellings for e-mail local parts of non-Latin names (deterministic, not a transliterator).
ASCII_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "è": "e", "ï": "i",
                            "í": "i", "á": "a", "ó": "o", "ú": "u", "ñ": "n", "ç": "c", "ã": "a",
                            "Ł": "L", "ł": "l", "ś": "s", "ı": "i", "ş": "s", "Ş": "S"})

CITIES: dict[str, tuple[str, ...]] = {
    "US": ("New York", "Chicago", "Los Angeles", "Boston", "Denver"), "GB": ("London", "Manchester", "Leeds"),
    "CA": ("Toronto", "Montréal", "Ottawa"), "AU": ("Sydney", "Melbourne"), "DE": ("Berlin", "München", "Köln"),
    "AT": ("Wien", "Graz"), "CH": ("Zürich", "Genève"), "FR": ("Paris", "Lyon", "Marseille"),
    "BE": ("Bruxelles", "Liège"), "ES": ("Madrid", "Barcelona", "Sevilla"), "MX": ("Ciudad de México", "Guadalajara"),
    "IT": ("Roma", "Milano", "Torino"), "BR": ("São Paulo", "Rio de Janeiro"), "JP": ("東京", "大阪", "横浜"),
    "CN": ("上海", "北京", "深圳"), "TW": ("台北", "高雄"), "SA": ("الرياض", "جدة"), "AE": ("دبي", "أبوظبي"),
    "EG": ("القاهرة",), "NL": ("Amsterdam", "Utrecht"), "PL": ("Warszawa", "Kraków"), "TR": ("İstanbul", "Ankara"),
}

CANCEL_REASONS = ("CUSTOMER", "CUSTOMER", "INVENTORY", "FRAUD", "DECLINED", "OTHER")
