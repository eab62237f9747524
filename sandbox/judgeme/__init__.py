"""Judge.me sandbox: seeded multilingual reviews and a reply endpoint, served over real loopback HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from base.clock import Clock, SystemClock
from sandbox.faults import FaultConfig, FaultInjector
from sandbox.judgeme.app import DEFAULT_MAX_PAGE, JudgemeApp
from sandbox.judgeme.store import JudgemeStore, ReceivedReply, Review
from sandbox.server import ServerThread

__all__ = ["JudgemeSandbox", "ReceivedReply", "Review", "serve", "DEMO_SHOP", "DEMO_TOKEN"]

DEMO_SHOP = "aftercare-demo.myshopify.com"
DEMO_TOKEN = "judgeme-sandbox-private-token"  # noqa: S105 - a public sandbox credential
DEMO_PRODUCTS = [
    {"id": 8000000001, "handle": "daily-face-serum", "title": "Daily Face Serum"},
    {"id": 8000000002, "handle": "coffee-beans-1kg", "title": "Coffee Beans 1 kg"},
    {"id": 8000000003, "handle": "water-filter-cartridge", "title": "Water Filter Cartridge"},
    {"id": 8000000004, "handle": "bamboo-toothbrush", "title": "Bamboo Toothbrush"},
]
DEMO_REVIEWERS = [
    {"email": "alice@example.com", "name": "Alice Martin"},
    {"email": "bruno@example.de", "name": "Bruno Schmidt"},
    {"email": "chloe@example.fr", "name": "Chloé Dubois"},
    {"email": "diego@example.es", "name": "Diego García"},
    {"email": "giulia@example.it", "name": "Giulia Rossi"},
    {"email": "haruto@example.jp", "name": "Haruto Sato"},
]


class JudgemeSandbox:
    """A Judge.me stand-in: seeded shops, the v1 review/reply API, fault injection and control methods.

    ``products`` are dicts ``{"id", "handle", "title"}`` (``id`` is the platform's product id);
    ``reviewers`` are dicts ``{"email", "name", "id"?}`` (``id`` is the platform's customer id);
    ``orders`` (optional) are dicts ``{"id", "email", "name"?, "customer_id"?, "product_ids"}`` — with them,
    reviews come from buyers of each product and remember their order id (Judge.me itself does not serve it).
    Every shop in ``shops`` (domain -> private API token) is seeded with the same catalogue.
    """

    def __init__(self, seed: int = 0, shops: dict[str, str] | None = None,
                 products: list[dict[str, Any]] | None = None, reviewers: list[dict[str, Any]] | None = None,
                 orders: list[dict[str, Any]] | None = None, reviews_per_product: int = 3,
                 clock: Clock | None = None, history_days: int = 60, max_page: int = DEFAULT_MAX_PAGE,
                 host: str = "127.0.0.1", port: int = 0):
        self.clock = clock or SystemClock()
        self.store = JudgemeStore(seed=seed)
        now = self.clock.now()
        for domain, token in (shops or {DEMO_SHOP: DEMO_TOKEN}).items():
            self.store.add_shop(domain, token)
            self.store.seed_shop(domain, products=products if products is not None else DEMO_PRODUCTS,
                                 reviewers=reviewers if reviewers is not None else DEMO_REVIEWERS,
                                 orders=orders, reviews_per_product=reviews_per_product, now=now,
                                 history_days=history_days)
        self.faults = FaultInjector(
            JudgemeApp(self.store, self.clock, max_page=max_page, configure_faults=self._configure_faults,
                       add_review=self._add_review_from_json),
            FaultConfig(seed=seed),
        )
        self._host, self._port = host, port
        self._server: ServerThread | None = None

    # -- serving ----------------------------------------------------------------------------------------
    @property
    def app(self) -> FaultInjector:
        """Return the WSGI app (the API wrapped in fault injection)."""
        return self.faults

    def start(self) -> JudgemeSandbox:
        """Start serving on loopback in a background thread and return self."""
        self._server = ServerThread(self.app, host=self._host, port=self._port).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        """Return the base URL to give the client (``http://127.0.0.1:<port>``)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return self._server.url

    @property
    def port(self) -> int:
        """Return the port served on."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return self._server.port

    def __enter__(self) -> JudgemeSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control ----------------------------------------------------------------------------------------
    def set_faults(self, rate: float, kinds: list[str] | tuple[str, ...] | None = None,
                   seed: int | None = None) -> None:
        """Inject faults into a fraction ``rate`` of API responses (see ``sandbox.faults.FAULT_KINDS``)."""
        self.faults.configure(rate, kinds, seed=seed)

    def _configure_faults(self, payload: dict[str, Any]) -> None:
        self.set_faults(float(payload["rate"]), payload.get("kinds"), payload.get("seed"))

    def reviews(self, shop_domain: str | None = None) -> list[Review]:
        """Return a shop's reviews (all shops when omitted), newest first, with order id and language."""
        domains = [shop_domain] if shop_domain else list(self.store.shops)
        return [r for d in domains for r in self.store.listed(d)]

    def review_json(self, shop_domain: str, review_id: int) -> dict[str, Any]:
        """Return one review exactly as the API serves it."""
        return self.store.review(shop_domain, review_id).to_json()

    def add_review(self, shop_domain: str, *, product_id: int | str | None, email: str, name: str, rating: int,
                   body: str, title: str = "", language: str | None = None, order_id: int | str | None = None,
                   created_at: datetime | None = None, customer_id: int | str | None = None,
                   published: bool = True, hidden: bool = False, curated: str = "ok") -> Review:
        """Add a review as if a customer just wrote it; ``product_id`` is the platform's id (None: store review)."""
        shop = self.store.shops[shop_domain]
        product = None
        if product_id is not None:
            product = next((p for p in shop.products.values() if str(p.external_id) == str(product_id)), None)
            if product is None:
                raise KeyError(f"unknown product {product_id} in {shop_domain}")
        reviewer = self.store.reviewer_for(shop_domain, email, name, external_id=customer_id)
        return self.store.add_review(shop_domain, product=product, reviewer=reviewer, rating=rating, title=title,
                                     body=body, created_at=created_at or self.clock.now(), order_id=order_id,
                                     language=language, published=published, hidden=hidden, curated=curated)

    def _add_review_from_json(self, payload: dict[str, Any]) -> dict[str, Any]:
        created = payload.get("created_at")
        review = self.add_review(
            payload["shop_domain"], product_id=payload.get("product_id"), email=payload["email"],
            name=payload.get("name") or payload["email"], rating=int(payload["rating"]), body=payload["body"],
            title=payload.get("title", ""), language=payload.get("language"), order_id=payload.get("order_id"),
            created_at=datetime.fromisoformat(created) if created else None,
            customer_id=payload.get("customer_id"))
        return review.to_json()

    def replies(self, shop_domain: str | None = None) -> list[ReceivedReply]:
        """Return every reply received (oldest first), optionally for one shop."""
        with self.store.lock:
            replies = list(self.store.replies)
        return [r for r in replies if shop_domain is None or r.shop_domain == shop_domain]


def serve(port: int = 9003, seed: int = 0, host: str = "127.0.0.1", shops: dict[str, str] | None = None,
          reviews_per_product: int = 5) -> None:
    """Serve the sandbox in the foreground (``aftercare sandbox judgeme --port 9003 --seed 3``)."""
    sandbox = JudgemeSandbox(seed=seed, shops=shops, reviews_per_product=reviews_per_product, host=host,
                             port=port)
    server = ServerThread(sandbox.app, host=host, port=port)
    for domain, shop in sandbox.store.shops.items():
        print(f"Judge.me sandbox on {server.url}: shop_domain={domain} api_token={shop.api_token} "
              f"reviews={len(shop.reviews)}", flush=True)
    server.serve_forever()
