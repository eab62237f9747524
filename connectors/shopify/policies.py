"""The shop's contact address and legal policies (refund, shipping ...), as customers' emails quote them.

Read with ``Shop.contactEmail`` and ``Shop.shopPolicies``
(https://shopify.dev/docs/api/admin-graphql/2025-01/objects/ShopPolicy): each policy has a type
(``ShopPolicyType``), a title, an HTML body the merchant wrote and the URL of its public page on the storefront.
Emails carry a short plain-text summary and the link, never the merchant's HTML.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from connectors.shopify import queries
from connectors.shopify.client import ShopifyClient

# The longest summary an email quotes; the link gives the whole text.
SUMMARY_CHARS = 400


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    """One policy: its ShopPolicyType, title, public URL and a plain-text summary of its body."""

    type: str
    title: str
    url: str
    summary: str


@dataclass(frozen=True, slots=True)
class ShopPolicies:
    """The shop's contact address and its policies by type."""

    contact_email: str | None
    policies: dict[str, PolicyRecord]

    def as_json(self) -> dict[str, dict[str, str]]:
        """Return the policies as ``store.shop_policies`` keeps them: type → {title, url, summary}."""
        return {kind: {"title": p.title, "url": p.url, "summary": p.summary} for kind, p in self.policies.items()}


class _Text(HTMLParser):
    """Collect the text of an HTML body, one paragraph per block element."""

    BLOCKS = frozenset({"p", "div", "br", "li", "h1", "h2", "h3", "h4", "tr", "ul", "ol"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_summary(body_html: str, limit: int = SUMMARY_CHARS) -> str:
    """Return the body's text in plain words, cut at a sentence end before ``limit`` characters when it is longer."""
    parser = _Text()
    parser.feed(body_html or "")
    parser.close()
    paragraphs = [" ".join(p.split()) for p in html.unescape("".join(parser.parts)).split("\n")]
    text = " ".join(p for p in paragraphs if p)
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    return cut[:end + 1] if end > limit // 3 else re.sub(r"\s+\S*$", "", cut) + " …"


def policies_record(shop: dict[str, Any]) -> ShopPolicies:
    """Map the ``shop`` object of the SHOP_POLICIES query (a policy without a URL or type is left out)."""
    policies: dict[str, PolicyRecord] = {}
    for item in shop.get("shopPolicies") or ():
        kind, url = item.get("type"), item.get("url")
        if not kind or not url:
            continue
        policies[str(kind)] = PolicyRecord(type=str(kind), title=str(item.get("title") or ""), url=str(url),
                                           summary=plain_summary(str(item.get("body") or "")))
    contact = (shop.get("contactEmail") or "").strip() or None
    return ShopPolicies(contact_email=contact, policies=policies)


def fetch_policies(client: ShopifyClient) -> ShopPolicies:
    """Ask the Admin API for the shop's contact address and policies (one query)."""
    return policies_record(client.execute(queries.SHOP_POLICIES, estimated_cost=3).get("shop") or {})
