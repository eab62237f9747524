"""Review texts in several languages for the Judge.me sandbox, grouped by what the review is about.

Complaint texts carry the keywords the ticket classifier looks for (counterfeit/fake, broken/damaged/wrong,
late/delay) in each language, so the review-reply flow sees realistic input.
"""

from __future__ import annotations

# kind -> language -> list of (title, body); "{product}" is replaced by the product title.
TEXTS: dict[str, dict[str, list[tuple[str, str]]]] = {
    "praise": {
        "en": [("Love it", "Great quality, {product} works exactly as described. Will buy again!"),
               ("Excellent", "Fast shipping and the {product} is even better than expected.")],
        "de": [("Sehr zufrieden", "Tolle Qualität, {product} ist genau wie beschrieben. Gerne wieder!"),
               ("Super", "Schnelle Lieferung, das {product} übertrifft meine Erwartungen.")],
        "fr": [("Parfait", "Très bonne qualité, {product} conforme à la description. Je recommande !"),
               ("Excellent produit", "Livraison rapide et {product} encore mieux que prévu.")],
        "es": [("Me encanta", "Muy buena calidad, {product} tal como se describe. ¡Volveré a comprar!"),
               ("Excelente", "Envío rápido y el {product} es mejor de lo esperado.")],
        "it": [("Ottimo", "Qualità eccellente, {product} esattamente come descritto. Lo ricomprerò!"),
               ("Consigliato", "Spedizione veloce, {product} migliore del previsto.")],
        "ja": [("大満足", "{product}は説明どおりの品質でした。また購入します！"),
               ("最高です", "配送も早く、{product}は期待以上でした。")],
        "nl": [("Heel blij", "Prima kwaliteit, {product} precies zoals beschreven. Zeker weer!")],
    },
    "neutral": {
        "en": [("It's okay", "The {product} is fine, nothing special for the price.")],
        "de": [("Ganz okay", "{product} ist in Ordnung, für den Preis aber nichts Besonderes.")],
        "fr": [("Correct", "{product} correct, sans plus pour ce prix.")],
        "es": [("Normal", "El {product} está bien, nada especial por el precio.")],
        "it": [("Nella media", "{product} discreto, niente di speciale per il prezzo.")],
        "ja": [("普通", "{product}は悪くないですが、値段の割に特別ではありません。")],
    },
    "counterfeit": {
        "en": [("Fake product", "This {product} is counterfeit, the logo is wrong and it smells of plastic."),
               ("Not genuine", "Pretty sure this is a fake {product}. Very disappointed.")],
        "de": [("Fälschung!", "Das {product} ist eine Fälschung, die Verpackung ist ganz anders als das Original.")],
        "fr": [("Contrefaçon", "Ce {product} est une contrefaçon, rien à voir avec l'original.")],
        "es": [("Falsificación", "Este {product} es una falsificación, el logo está mal.")],
        "it": [("Contraffatto", "Il {product} è contraffatto, non è l'originale.")],
        "ja": [("偽物です", "届いた{product}は偽物でした。ロゴが違います。")],
    },
    "damaged": {
        "en": [("Arrived broken", "The {product} arrived broken and the box was damaged."),
               ("Wrong item", "I received the wrong item instead of the {product} I ordered.")],
        "de": [("Kaputt angekommen", "Das {product} kam kaputt an, der Karton war beschädigt.")],
        "fr": [("Arrivé cassé", "Le {product} est arrivé cassé, colis abîmé.")],
        "es": [("Llegó roto", "El {product} llegó roto y la caja estaba dañada.")],
        "it": [("Arrivato rotto", "Il {product} è arrivato rotto, pacco danneggiato.")],
        "ja": [("破損していました", "{product}が壊れた状態で届きました。箱も破損していました。")],
    },
    "late": {
        "en": [("Very late", "The {product} is fine but delivery was three weeks late, no updates on the delay.")],
        "de": [("Verspätet", "Das {product} ist gut, aber die Lieferung kam zwei Wochen verspätet.")],
        "fr": [("Livraison en retard", "{product} correct mais livraison avec deux semaines de retard.")],
        "es": [("Muy tarde", "El {product} está bien pero llegó con mucho retraso.")],
        "it": [("In ritardo", "Il {product} va bene ma la consegna è arrivata in ritardo di due settimane.")],
        "ja": [("配送遅延", "{product}は良いのですが、配送が二週間も遅れました。")],
    },
}

# Review kinds and the star ratings each one gets; weights give a realistic spread (mostly happy buyers).
KIND_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("praise", 60), ("neutral", 10), ("counterfeit", 8), ("damaged", 12), ("late", 10),
)
KIND_RATINGS: dict[str, tuple[int, ...]] = {
    "praise": (4, 5, 5),
    "neutral": (3,),
    "counterfeit": (1,),
    "damaged": (1, 2),
    "late": (2, 3),
}
LANGUAGE_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("en", 40), ("de", 15), ("fr", 12), ("es", 10), ("it", 8), ("ja", 10), ("nl", 5),
)
