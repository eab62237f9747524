"""The Judge.me sandbox's state: shops, products, reviews and the replies received, seeded deterministically.

Field names follow the review JSON Judge.me returns from ``GET /api/v1/reviews``
(https://judge.me/api/docs#tag/Reviews): ``product_external_id`` is the platform's (Shopify's) product id,
``reviewer.external_id`` the platform's customer id, ``curated`` one of ``ok``/``not-yet``/``spam``,
``verified`` a string such as ``buyer`` or ``nothing``. Judge.me's review JSON carries neither an order id nor
a language; the sandbox keeps both beside each review (for the demo and for tests) but never serves them.
"""

from __future__ import annotations

import hashlib
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.judgeme.texts import KIND_RATINGS, KIND_WEIGHTS, LANGUAGE_WEIGHTS, TEXTS


class ReviewNotFound(LookupError):
    """The review id does not exist in the given shop."""


@dataclass
class Product:
    """A product as Judge.me knows it: its own id plus the platform's external id and handle."""

    id: int
    external_id: int | str
    handle: str
    title: str


@dataclass
class Reviewer:
    """A Judge.me reviewer (one per email per shop)."""

    id: int
    email: str
    name: str
    external_id: int | str | None = None
    phone: str | None = None
    accepts_marketing: bool = False


@dataclass
class Review:
    """One review plus what the sandbox knows beyond the API: the order it came from and its language."""

    id: int
    shop_domain: str
    product: Product | None
    reviewer: Reviewer
    rating: int
    title: str
    body: str
    created_at: datetime
    updated_at: datetime
    source: str = "web"
    curated: str = "ok"
    published: bool = True
    hidden: bool = False
    verified: str = "nothing"
    ip_address: str | None = None
    order_id: int | str | None = None
    language: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the review as Judge.me's API serialises it."""
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "rating": self.rating,
            "product_external_id": self.product.external_id if self.product else None,
            "reviewer": {
                "id": self.reviewer.id,
                "external_id": self.reviewer.external_id,
                "email": self.reviewer.email,
                "name": self.reviewer.name,
                "phone": self.reviewer.phone,
                "accepts_marketing": self.reviewer.accepts_marketing,
                "unsubscribed_at": None,
                "tags": None,
            },
            "source": self.source,
            "curated": self.curated,
            "published": self.published,
            "hidden": self.hidden,
            "verified": self.verified,
            "featured": False,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "has_published_pictures": False,
            "has_published_videos": False,
            "pictures": [],
            "ip_address": self.ip_address,
            "product_title": self.product.title if self.product else None,
            "product_handle": self.product.handle if self.product else None,
        }


@dataclass(frozen=True)
class ReceivedReply:
    """A public reply the sandbox accepted through ``POST /api/v1/replies``."""

    id: int
    shop_domain: str
    review_id: int
    content: str
    send_reply_email: bool
    received_at: datetime


@dataclass
class Shop:
    """One Judge.me shop: its private API token and its data."""

    domain: str
    api_token: str
    products: dict[int, Product] = field(default_factory=dict)
    reviewers: dict[str, Reviewer] = field(default_factory=dict)
    reviews: dict[int, Review] = field(default_factory=dict)


def _iso(when: datetime) -> str:
    """Format like Judge.me: seconds precision with a numeric UTC offset (``2022-05-12T04:38:32+00:00``)."""
    return when.astimezone(UTC).replace(microsecond=0).isoformat()


def _stable_int(*parts: object) -> int:
    """Derive a stable integer from parts (Python's ``hash`` is salted per process)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _weighted(rng: random.Random, weights: tuple[tuple[str, int], ...]) -> str:
    names, values = zip(*weights, strict=True)
    return rng.choices(names, weights=values, k=1)[0]


class JudgemeStore:
    """Thread-safe state of the sandbox; every id is allocated here so ids are unique across shops."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.shops: dict[str, Shop] = {}
        self.replies: list[ReceivedReply] = []
        self.lock = threading.RLock()
        self._next_review_id = 300_000_000 + seed * 1000
        self._next_reviewer_id = 190_000_000 + seed * 1000
        self._next_product_id = 1_400_000_000 + seed * 1000
        self._next_reply_id = 50_000_000 + seed * 1000

    # -- set-up -----------------------------------------------------------------------------------------
    def add_shop(self, domain: str, api_token: str) -> Shop:
        """Register a shop with its private API token."""
        with self.lock:
            shop = Shop(domain=domain, api_token=api_token)
            self.shops[domain] = shop
            return shop

    def add_product(self, domain: str, external_id: int | str, handle: str, title: str) -> Product:
        """Register a product of a shop (Judge.me imports them from the platform)."""
        with self.lock:
            shop = self.shops[domain]
            for product in shop.products.values():
                if str(product.external_id) == str(external_id):
                    return product
            self._next_product_id += 1
            product = Product(id=self._next_product_id, external_id=external_id, handle=handle, title=title)
            shop.products[product.id] = product
            return product

    def reviewer_for(self, domain: str, email: str, name: str, external_id: int | str | None = None,
                     accepts_marketing: bool = False) -> Reviewer:
        """Return the shop's reviewer with this email, creating it on first use."""
        with self.lock:
            shop = self.shops[domain]
            key = email.strip().lower()
            reviewer = shop.reviewers.get(key)
            if reviewer is None:
                self._next_reviewer_id += 1
                reviewer = Reviewer(id=self._next_reviewer_id, email=email, name=name, external_id=external_id,
                                    accepts_marketing=accepts_marketing)
                shop.reviewers[key] = reviewer
            return reviewer

    def add_review(self, domain: str, *, product: Product | None, reviewer: Reviewer, rating: int, title: str,
                   body: str, created_at: datetime, order_id: int | str | None = None,
                   language: str | None = None, verified: str | None = None, source: str = "web",
                   curated: str = "ok", published: bool = True, hidden: bool = False) -> Review:
        """Store a new review and return it."""
        if not 1 <= rating <= 5:
            raise ValueError(f"rating must be 1..5, got {rating}")
        if created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")
        with self.lock:
            self._next_review_id += 1
            review = Review(
                id=self._next_review_id, shop_domain=domain, product=product, reviewer=reviewer, rating=rating,
                title=title, body=body, created_at=created_at, updated_at=created_at, source=source,
                curated=curated, published=published, hidden=hidden,
                verified=verified or ("buyer" if order_id is not None else "nothing"),
                ip_address=None, order_id=order_id, language=language,
            )
            self.shops[domain].reviews[review.id] = review
            return review

    # -- seeding ----------------------------------------------------------------------------------------
    def seed_shop(self, domain: str, *, products: list[dict[str, Any]], reviewers: list[dict[str, Any]],
                  orders: list[dict[str, Any]] | None, reviews_per_product: int, now: datetime,
                  history_days: int) -> None:
        """Create ``reviews_per_product`` reviews per product, deterministic for (seed, shop).

        With ``orders`` (dicts with ``id``, ``email``, optional ``name``/``customer_id`` and ``product_ids``)
        each review comes from a buyer of that product and is marked ``verified: "buyer"``; otherwise the
        reviewers are drawn from ``reviewers`` and the reviews are unverified web reviews.
        """
        rng = random.Random(_stable_int("judgeme", self.seed, domain))
        known = [self.add_product(domain, p["id"], p.get("handle") or f"product-{p['id']}",
                                  p.get("title") or f"Product {p['id']}") for p in products]
        buyers: dict[str, list[dict[str, Any]]] = {}
        for order in orders or []:
            for product_id in order.get("product_ids", []):
                buyers.setdefault(str(product_id), []).append(order)
        for product in known:
            candidates = buyers.get(str(product.external_id), []) if orders is not None else []
            if orders is not None and not candidates:
                continue  # nobody bought it, nobody reviews it
            for _ in range(reviews_per_product):
                if candidates:
                    order = rng.choice(candidates)
                    reviewer = self.reviewer_for(domain, order["email"],
                                                 order.get("name") or order["email"].split("@")[0].title(),
                                                 external_id=order.get("customer_id"))
                    order_id = order["id"]
                else:
                    if not reviewers:
                        raise ValueError("seeding needs reviewers (or orders)")
                    person = rng.choice(reviewers)
                    reviewer = self.reviewer_for(domain, person["email"], person.get("name") or person["email"],
                                                 external_id=person.get("id"))
                    order_id = None
                kind = _weighted(rng, KIND_WEIGHTS)
                texts = TEXTS[kind]
                language = _weighted(rng, tuple((lang, w) for lang, w in LANGUAGE_WEIGHTS if lang in texts))
                title, body = rng.choice(texts[language])
                created_at = (now - timedelta(seconds=rng.randrange(1, history_days * 86400))).replace(
                    microsecond=0)
                self.add_review(domain, product=product, reviewer=reviewer, rating=rng.choice(KIND_RATINGS[kind]),
                                title=title, body=body.format(product=product.title), created_at=created_at,
                                order_id=order_id, language=language)

    # -- queries ----------------------------------------------------------------------------------------
    def listed(self, domain: str, *, product_id: int | None = None, rating: int | None = None,
               reviewer_id: int | None = None, published: bool | None = None) -> list[Review]:
        """Return a shop's reviews filtered like ``GET /api/v1/reviews``, newest first."""
        with self.lock:
            reviews = list(self.shops[domain].reviews.values())
        if product_id is not None:
            reviews = [r for r in reviews if r.product is not None and r.product.id == product_id]
        if rating is not None:
            reviews = [r for r in reviews if r.rating == rating]
        if reviewer_id is not None:
            reviews = [r for r in reviews if r.reviewer.id == reviewer_id]
        if published is not None:
            reviews = [r for r in reviews if r.published == published]
        reviews.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return reviews

    def review(self, domain: str, review_id: int) -> Review:
        """Return one review of a shop or raise ``ReviewNotFound``."""
        with self.lock:
            review = self.shops[domain].reviews.get(review_id)
        if review is None:
            raise ReviewNotFound(review_id)
        return review

    def record_reply(self, domain: str, review_id: int, content: str, send_reply_email: bool,
                     now: datetime) -> ReceivedReply:
        """Record a public reply; Judge.me keeps one public reply per review, a new one replaces it."""
        with self.lock:
            self.review(domain, review_id)
            self._next_reply_id += 1
            reply = ReceivedReply(id=self._next_reply_id, shop_domain=domain, review_id=review_id,
                                  content=content, send_reply_email=send_reply_email, received_at=now)
            self.replies.append(reply)
            return reply
