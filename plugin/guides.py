"""Usage guides and care tips: the merchant's content blocks, their sanitised HTML, starters and email variables.

A block is written per product, per collection or per product type, in as many languages as the merchant likes
(``texts``: locale → title and HTML). Its HTML is merchant input shown inside our email: it is cleaned with nh3
(the Ammonia sanitiser) on save and again when rendered, so no script, style, event handler or foreign URL scheme
reaches a customer.
A block that holds an offer or a recommendation (offer words, links to products, collections or discounts) is
marketing: it goes only to customers who consented (plugin.flows.usage_guide decides; the email channel refuses
to render such a block into a service email).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import nh3
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.messaging import locales, templates
from plugin.models import GUIDE_TARGETS, GuideBlock

# The starter texts the merchant begins from (one table per starter in every locale's catalogue), and the product
# type each suggests.
STARTERS: dict[str, str] = {"textiles": "Textiles", "skincare": "Skincare", "coffee": "Coffee",
                            "supplements": "Supplements"}
STARTERS_TABLE = "guide_starters"
DEFAULT_DAYS = 2.0
MAX_IMAGES = 6
# Formatting a care tip needs; no images inside the text (they come from the block's https image URLs), no tables.
ALLOWED_TAGS = frozenset({"p", "br", "strong", "em", "b", "i", "u", "ul", "ol", "li", "h2", "h3", "h4",
                          "blockquote", "a"})
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = frozenset({"https", "mailto"})


class GuideRefused(ValueError):
    """A block that cannot be saved; the message says why in words a merchant understands."""


def sanitize(html: str) -> str:
    """Return the merchant's HTML with only the allowed tags, attributes and URL schemes (nh3/Ammonia)."""
    return nh3.clean(html or "", tags=set(ALLOWED_TAGS), attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
                     url_schemes=set(URL_SCHEMES), link_rel="noopener noreferrer")


def offer_findings(texts: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Return what makes a block an offer or a recommendation, in every language (empty: it is service mail)."""
    found: set[str] = set()
    for text in texts.values():
        for part in (text.get("title") or "", text.get("html") or ""):
            found.update(f'"{w}"' for w in templates.offer_words(part))
            if templates.SHOP_LINK.search(part):
                found.add("a link to the shop's products, collections or discounts")
    return sorted(found)


def is_marketing(block: GuideBlock) -> bool:
    """Say whether the block holds an offer or a recommendation (then only consenting customers get it)."""
    return bool(offer_findings(block.texts or {}))


def check_service_content(texts: Mapping[str, Mapping[str, str]]) -> None:
    """Refuse content that holds an offer or a recommendation in a service email (DESIGN §4: offers never)."""
    findings = offer_findings(texts)
    if findings:
        raise templates.TemplateRefused(
            f"this email may hold no offer or recommendation ({', '.join(findings)}): only marketing emails, sent "
            "with the customer's consent, may")


def _https(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.netloc)


def clean_block(*, target_kind: str, target: str, texts: Mapping[str, Mapping[str, str]], image_urls: Iterable[str],
                video_url: str | None, days_after_delivery: float) -> dict[str, Any]:
    """Check and clean a block's fields from the editor; raise GuideRefused with the merchant's words otherwise."""
    if target_kind not in GUIDE_TARGETS:
        raise GuideRefused("Choose a product, a collection or a product type.")
    target = (target or "").strip()
    if not target:
        raise GuideRefused("Choose which product, collection or product type the guide is for.")
    cleaned: dict[str, dict[str, str]] = {}
    for raw_locale, text in texts.items():
        locale = locales.normalize(raw_locale)
        if locale is None:
            raise GuideRefused(f"Unknown language {raw_locale!r}.")
        title, body = (text.get("title") or "").strip(), sanitize(text.get("html") or "").strip()
        if title or body:
            cleaned[locale] = {"title": title, "html": body}
    if not cleaned:
        raise GuideRefused("Write the guide in at least one language.")
    images = [u.strip() for u in image_urls if u and u.strip()]
    if len(images) > MAX_IMAGES:
        raise GuideRefused(f"At most {MAX_IMAGES} images per guide.")
    for url in images + ([video_url.strip()] if video_url and video_url.strip() else []):
        if not _https(url):
            raise GuideRefused(f"Images and the video link must be https addresses ({url!r} is not).")
    if not 0 <= float(days_after_delivery) <= 365:
        raise GuideRefused("Days after delivery must be between 0 and 365.")
    return {"target_kind": target_kind, "target": target, "texts": cleaned, "image_urls": images,
            "video_url": (video_url or "").strip() or None, "days_after_delivery": float(days_after_delivery)}


# -- starters -----------------------------------------------------------------------------------------------------
@lru_cache(maxsize=len(locales.SUPPORTED))
def _starters(locale: str) -> dict[str, Any]:
    with (templates.DEFAULTS_DIR / f"{locale}.toml").open("rb") as fh:
        return tomllib.load(fh).get(STARTERS_TABLE, {})


def starter_texts(name: str) -> dict[str, dict[str, str]]:
    """Return a shipped starter's title and HTML in every shipped locale."""
    if name not in STARTERS:
        raise GuideRefused(f"Unknown starter {name!r}.")
    out = {}
    for locale in locales.SUPPORTED:
        entry = _starters(locale).get(name)
        if entry:
            out[locale] = {"title": entry["title"], "html": sanitize(entry["html"]).strip()}
    return out


def new_from_starter(session: Session, store_id: int, name: str) -> GuideBlock:
    """Add a disabled block for the starter's product type, texts in every shipped locale, for the merchant to edit."""
    block = GuideBlock(store_id=store_id, name=STARTERS.get(name, name), target_kind="product_type",
                       target=STARTERS.get(name, name), texts=starter_texts(name), image_urls=[], video_url=None,
                       days_after_delivery=DEFAULT_DAYS, enabled=False, starter=name)
    session.add(block)
    session.flush()
    return block


# -- choosing and rendering -----------------------------------------------------------------------------------------
def enabled_blocks(session: Session, store_id: int) -> list[GuideBlock]:
    """Return the store's enabled blocks, oldest first."""
    return list(session.scalars(select(GuideBlock).where(GuideBlock.store_id == store_id,
                                                         GuideBlock.enabled.is_(True)).order_by(GuideBlock.id)))


def blocks_by_id(session: Session, ids: list[int]) -> dict[int, GuideBlock]:
    """Return the blocks of these ids (a message's guides), by id."""
    if not ids:
        return {}
    return {b.id: b for b in session.scalars(select(GuideBlock).where(GuideBlock.id.in_(ids)))}


@dataclass(frozen=True)
class BlockIndex:
    """A store's enabled blocks by product id, collection id and product type (case-folded).

    Precedence, most specific first: the product's own block, else a block of one of its collections (of several,
    the oldest block), else its product type's.
    """

    by_product: dict[int, GuideBlock]
    by_type: dict[str, GuideBlock]
    by_collection: dict[str, GuideBlock]

    @classmethod
    def of(cls, blocks: Iterable[GuideBlock]) -> BlockIndex:
        """Index blocks; of two for the same target the older one is used."""
        by_product: dict[int, GuideBlock] = {}
        by_type: dict[str, GuideBlock] = {}
        by_collection: dict[str, GuideBlock] = {}
        for block in sorted(blocks, key=lambda b: b.id):
            if block.target_kind == "product" and block.target.isdigit():
                by_product.setdefault(int(block.target), block)
            elif block.target_kind == "collection":
                by_collection.setdefault(block.target.strip(), block)
            elif block.target_kind == "product_type":
                by_type.setdefault(block.target.strip().casefold(), block)
        return cls(by_product, by_type, by_collection)

    def find(self, product_id: int | None, product_type: str | None,
             collections: Iterable[str] = ()) -> GuideBlock | None:
        """Return the block for a product: its own, else its collections' (the oldest), else its type's, else None."""
        if product_id is not None and product_id in self.by_product:
            return self.by_product[product_id]
        held = [self.by_collection[c] for c in collections if c in self.by_collection]
        if held:
            return min(held, key=lambda b: b.id)
        return self.by_type.get((product_type or "").strip().casefold())


def choose_text(texts: Mapping[str, Mapping[str, str]], locale: str, store_locale: str | None) -> tuple[str, dict]:
    """Return the locale and text of a block to show: the email's language, the store's, English, else any."""
    for candidate in (locale, locales.normalize(store_locale), locales.DEFAULT):
        if candidate and candidate in texts:
            return candidate, dict(texts[candidate])
    first = sorted(texts)[0]
    return first, dict(texts[first])


def guide_vars(block: GuideBlock, product_title: str, locale: str, store_locale: str | None) -> dict[str, Any]:
    """Return one guide's template variables in the email's language (the HTML sanitised again: it is shown as is)."""
    text_locale, text = choose_text(block.texts or {"en": {"title": "", "html": ""}}, locale, store_locale)
    return {"product": {"title": product_title}, "title": text.get("title") or product_title,
            "html": Markup(sanitize(text.get("html") or "")),  # noqa: S704  # cleaned by nh3 just above
            "locale": text_locale, "dir": locales.direction(text_locale),
            "images": [{"url": u, "alt": product_title} for u in (block.image_urls or []) if _https(u)],
            "video_url": block.video_url if block.video_url and _https(block.video_url) else None}
