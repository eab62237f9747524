"""The ``email`` channel: template variables from the database, rendering, MIME and SMTP delivery.

Rendering happens in ``prepare`` (inside the claim transaction, before any connection opens), so a broken
template fails the message without sending anything. A replenishment reminder's single-use discount code
(and a survey come-back offer's) is created in Shopify just before its email goes out, so a cancelled
message leaves no live code behind.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.shopify.discounts import create_discount_code, create_free_shipping_code
from connectors.shopify.errors import ShopifyError, ShopifyUserError
from plugin import flow_settings, guides, recommendations
from plugin.auth.tokens import ReinstallNeeded, ShopifyGrantError
from plugin.context import JobContext
from plugin.marketplaces import shopify_client
from plugin.messaging import bounces, links, locales, sendtime, templates
from plugin.messaging import email as mail
from plugin.messaging.branding import brand_of
from plugin.messaging.channels.base import DeliveryError, Sender
from plugin.messaging.policy import Decision
from plugin.messaging.suppression import digest as suppression_digest
from plugin.models import (
    CANCELLATION_ANSWERS,
    Customer,
    GuideBlock,
    Merchant,
    Message,
    Order,
    OrderLine,
    Parcel,
    Product,
    Store,
    Ticket,
)

log = logging.getLogger("aftercare.messaging")

SCALES = {"nps": range(0, 11), "csat": range(1, 6)}
# Steps whose single-use code the channel creates in Shopify before the email leaves.
OFFER_STEPS = frozenset({("replenishment", "main"), ("ticket_followup", "comeback"), ("winback", "main"),
                         ("vip", "main"),
                         ("birthday", "main"), ("shopping_calendar", "main")})
# Steps whose code the channel names itself (from the idempotency key); replenishment names its own.
CODE_PREFIXES = {("ticket_followup", "comeback"): "COMEBACK", ("winback", "main"): "WELCOMEBACK",
                 ("vip", "main"): "VIP",
                 ("birthday", "main"): "BDAY", ("shopping_calendar", "main"): "EVENT"}
# Steps whose payload may name its own code prefix (the calendar: BLACKFRIDAY-..., DIWALI-...).
OWN_PREFIX_STEPS = frozenset({("shopping_calendar", "main")})
DEFAULT_RECOMMENDATIONS = 3


@dataclass(frozen=True)
class PreparedEmail:
    """A rendered email ready for SMTP, and what must happen in Shopify first (a discount code)."""

    message: EmailMessage
    sender: str
    recipient: str
    message_id: str
    discount: dict[str, Any] | None = None


class EmailChannel:
    """Sends customer and merchant emails through ``AFTERCARE_SMTP_URL``."""

    name = "email"

    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        config = ctx.config
        smtp_url = ctx.extras.get("smtp_url") or config.secrets.smtp_url
        self._smtp_url = str(smtp_url or "")
        self.timeout = config.get("mail.timeout_seconds")
        self.base_url = str(ctx.extras.get("base_url") or config.get("app.base_url")).rstrip("/")
        self.secret_key = config.secrets.secret_key
        self.unsubscribe_mailto = config.get("mail.unsubscribe_mailto")
        self.bounce_mailbox = config.get("mail.bounce_mailbox")
        # A channel lives for one dispatch run: templates and flow settings are read once per run.
        self._sources: dict[tuple[int, str, str, str], templates.TemplateSource] = {}
        self._flow_settings: dict[tuple[int, str], dict[str, Any]] = {}

    # -- prepare (database + rendering, no network) ----------------------------------------------------------
    def prepare(self, session: Session, message: Message, decision: Decision) -> PreparedEmail:
        """Render the message in its locale and build the MIME message with a persisted Message-ID."""
        store = session.get(Store, message.store_id)
        merchant = session.get(Merchant, store.merchant_id) if store else None
        if store is None or merchant is None or decision.address is None:
            raise DeliveryError("the message has no store or no address", permanent=True)
        customer = session.get(Customer, message.customer_id) if message.customer_id else None
        if store.platform == "shopify":
            self._name_code(message, self.ctx.clock.now())
        try:
            context = self.context(session, message, store, customer, locale=decision.locale)
        except templates.TemplateRefused as exc:
            raise DeliveryError(f"{message.flow}/{message.step} ({decision.locale}): {exc}", permanent=True) from exc
        flow, step = template_of(message)
        key = (store.id, flow, step, decision.locale)
        if key not in self._sources:
            self._sources[key] = templates.get_source(session, *key)
        source = self._sources[key]
        try:
            rendered = templates.render_email(flow, source, context, decision.locale, brand_of(store, merchant))
        except templates.TemplateRefused as exc:
            raise DeliveryError(f"template {flow}/{step} ({decision.locale}): {exc}", permanent=True) from exc
        from_email = merchant.sender_email or self.ctx.config.get("mail.from_email") or \
            f"no-reply@{urlsplit(self.base_url).hostname or 'aftercare.local'}"
        from_name = merchant.sender_name or self.ctx.config.get("mail.from_name") or store.name or merchant.name
        reply_to = merchant.reply_to or self.ctx.config.get("mail.reply_to") or None
        if not message.provider_id:
            # Persisted with the claim: a resend after a crash carries the same Message-ID.
            message.provider_id = mail.new_message_id(from_email.rsplit("@", 1)[-1])
        message.subject = rendered.subject[:998]
        message.locale = decision.locale
        message.to_address = decision.address
        envelope = mail.Envelope(from_name=from_name, from_email=from_email, to=decision.address,
                                 message_id=message.provider_id, reply_to=reply_to,
                                 unsubscribe_url=context.get("unsubscribe_url"),
                                 unsubscribe_mailto=self._mailto(message, store, customer)
                                 if context.get("unsubscribe_url") else None)
        built = mail.build_message(rendered, envelope, date=self.ctx.clock.now())
        # The envelope sender, where later bounces go: the message's signed return path when a bounce mailbox is set.
        sender = (bounces.return_path(self.secret_key, self.bounce_mailbox, message.id) if self.bounce_mailbox
                  else from_email)
        return PreparedEmail(message=built, sender=sender, recipient=decision.address,
                             message_id=message.provider_id, discount=self._discount(message, store, customer))

    def _mailto(self, message: Message, store: Store, customer: Customer | None) -> str | None:
        if not self.unsubscribe_mailto:
            return None
        token = links.make_token(self.secret_key, self.ctx.clock, "unsubscribe", message.id,
                                 **_unsubscribe_extra(message, store, customer))
        return f"{self.unsubscribe_mailto}?subject=unsubscribe%20{token}"

    def _link(self, purpose: str, message: Message, **extra: Any) -> str:
        return links.url(self.base_url, self.secret_key, self.ctx.clock, purpose, message.id, **extra)

    def context(self, session: Session, message: Message, store: Store, customer: Customer | None,
                locale: str | None = None) -> dict[str, Any]:
        """Return the template variables of a message (the names ``templates.sample_context`` documents)."""
        payload = message.payload or {}
        shop_url = f"https://{store.external_id}" if store.platform == "shopify" else ""
        zone = sendtime.resolve_zone(customer.time_zone if customer else None,
                                     (customer.country if customer else None) or store.country, store.timezone)
        ctx: dict[str, Any] = {
            "customer": {"first_name": customer.first_name if customer else None},
            "store": {"name": store.name, "url": shop_url},
            "currency": store.currency,
            "timezone": zone,
        }
        if message.flow not in ("ticket_alert", "test"):
            ctx["unsubscribe_url"] = self._link("unsubscribe", message, **_unsubscribe_extra(message, store, customer))
            # The signed "tell us your birthday" page (plugin.public), for any email to a known customer.
            ctx["birthday_url"] = self._link("birthday", message) if customer is not None else None
        order = session.get(Order, message.order_id) if message.order_id else None
        order_vars = {"name": (order.name if order else None) or payload.get("order_name") or "",
                      "date": order.created_at_remote if order else None,
                      "total": order.total_price if order else None}
        flow = message.flow
        if flow == "review_request":
            products = self._order_products(session, order)
            items = [{"title": title, "review_url": self._link("review", message, pr=pid), **image}
                     for pid, title, image in products]
            if (store.id, flow) not in self._flow_settings:
                self._flow_settings[(store.id, flow)] = flow_settings.effective(session, self.ctx.config, store.id,
                                                                                flow)
            settings = self._flow_settings[(store.id, flow)]
            ctx.update(order=order_vars, products=items,
                       review_url=items[0]["review_url"] if items else self._link("review", message),
                       incentive_text=str(settings.get("incentive_text") or ""))
        elif flow == "survey":
            kind = str(payload.get("kind") or "nps")
            ctx.update(order=order_vars, kind=kind,
                       score_links=[{"score": s, "url": self._link("score", message, s=s)} for s in SCALES[kind]])
        elif flow == "ticket_followup":
            ctx.update(order=order_vars, changes=payload.get("resolution") or payload.get("changes") or "",
                       remedy=payload.get("remedy"), shop_url=shop_url)
            if message.step == "comeback":
                ctx.update(discount_code=payload.get("discount_code"),
                           discount_percent=payload.get("discount_percent"))
        elif flow == "first_order":
            ctx.update(order=order_vars, ship_days=payload.get("ship_days"), arrive_days=payload.get("arrive_days"),
                       contact_email=payload.get("contact_email"), refund_policy=payload.get("refund_policy"),
                       shipping_policy_url=payload.get("shipping_policy_url"), shop_url=shop_url)
        elif flow == "usage_guide" or (flow == "test" and payload.get("guide_block_id")):
            ctx.update(order=order_vars, guides=self._guides(session, message, store,
                                                             locale or message.locale or locales.DEFAULT))
        elif flow == "cancellation":
            ctx.update(order=order_vars, shop_url=shop_url, contact_email=store.contact_email)
            if message.step == "ask":
                ctx["reason_links"] = [{"reason": r, "url": self._link("cancel_reason", message, r=r)}
                                       for r in CANCELLATION_ANSWERS]
        elif flow == "replenishment":
            product = session.get(Product, message.product_id) if message.product_id else None
            title = payload.get("product_title") or (product.title if product else "")
            run_out = payload.get("run_out_at")
            ctx.update(product={"title": title, **product_image(product, title)}, quantity=payload.get("quantity", 1),
                       run_out_date=_as_date(run_out, zone), reorder_url=self._link("reorder", message),
                       discount_code=payload.get("discount_code"), discount_percent=payload.get("discount_percent"),
                       subscribe_offer=bool(payload.get("subscribe_offer")),
                       subscribe_url=payload.get("subscribe_url") or _product_url(shop_url, product))
        elif flow == "winback":
            ctx.update(shop_url=shop_url, discount_code=payload.get("discount_code"),
                       discount_amount=_as_decimal(payload.get("discount_amount")),
                       discount_min_subtotal=_as_decimal(payload.get("discount_min_subtotal")),
                       discount_ends_at=_as_datetime(payload.get("discount_ends_at")))
        elif flow == "birthday":
            ctx.update(shop_url=shop_url, discount_code=payload.get("discount_code"),
                       discount_percent=payload.get("discount_percent"),
                       discount_ends_at=_as_datetime(payload.get("discount_ends_at")),
                       birthday=date.fromisoformat(payload["birthday_on"]) if payload.get("birthday_on") else None)
        elif flow == "shopping_calendar":
            ctx.update(shop_url=shop_url, discount_code=payload.get("discount_code"),
                       discount_percent=payload.get("discount_percent"),
                       discount_ends_at=_as_datetime(payload.get("discount_ends_at")),
                       event=templates.event_vars(payload, locale or message.locale or locales.DEFAULT))
        elif flow == "vip":
            ctx.update(shop_url=shop_url, discount_code=payload.get("discount_code"),
                       discount_percent=payload.get("discount_percent"),
                       discount_amount=_as_decimal(payload.get("discount_amount")),
                       discount_free_shipping=bool(payload.get("discount_free_shipping")),
                       discount_ends_at=_as_datetime(payload.get("discount_ends_at")),
                       perk_text=str(payload.get("perk_text") or ""))
        elif flow == "delivery_update":
            ctx.update(delivery_vars(session, message, locale or message.locale or locales.DEFAULT),
                       order=order_vars, tracking_url=self._link("track", message))
        elif flow == "ticket_alert":
            ticket = session.get(Ticket, message.ticket_id) if message.ticket_id else None
            due = ticket.sla_due_at if ticket else _as_datetime(payload.get("sla_due_at"))
            ctx.update(ticket={"id": message.ticket_id or payload.get("ticket_id"),
                               "subject": (ticket.subject if ticket else payload.get("ticket_subject")) or "",
                               "severity": ticket.severity if ticket else payload.get("severity"),
                               "sla_due_at": due,
                               "url": f"{self.base_url}/admin/tickets/{message.ticket_id or payload.get('ticket_id')}"})
            ctx["timezone"] = ZoneInfo(store.timezone or "UTC")
        elif flow == "delivery_stalls":
            ctx.update(order=order_vars, problem=payload.get("problem") or "", failed=bool(payload.get("failed")),
                       carrier=payload.get("carrier") or "", tracking_number=payload.get("tracking_number") or "")
        if message.marketing and customer is not None:
            # Selling belongs to marketing messages only (DESIGN §4): no other class gets the block at all, so
            # a transactional, service or review-request template naming it is refused as an unknown variable.
            count = int(payload.get("recommendations", DEFAULT_RECOMMENDATIONS))
            found = recommendations.for_customers(session, store, [customer.id], count)[customer.id]
            ctx["recommendations"] = [r.as_vars() for r in found]
        # Nothing in a row's payload overrides these variables: the unsubscribe link, the class's offers and the
        # recommendations are the rules' (DESIGN §1, §4), not the row's.
        return ctx

    @staticmethod
    def _guides(session: Session, message: Message, store: Store, locale: str) -> list[dict[str, Any]]:
        """Return a usage-guide email's guides in ``locale``; a service email refuses a guide holding an offer.

        The guides were chosen when the row was written, but the merchant may have edited a block since: content
        that now holds an offer or a recommendation never leaves in an email sent without marketing consent.
        """
        payload = message.payload or {}
        if message.flow == "test":
            block = session.get(GuideBlock, payload["guide_block_id"])
            wanted = [{"block_id": block.id, "product_title": payload.get("product_title") or block.target}] \
                if block is not None and block.store_id == store.id else []
        else:
            wanted = list(payload.get("guides") or [])
        blocks = guides.blocks_by_id(session, [int(g["block_id"]) for g in wanted])
        out = []
        for item in wanted:
            block = blocks.get(int(item["block_id"]))
            if block is None:  # deleted since the row was written: that guide is left out
                continue
            if not message.marketing and message.flow != "test":
                guides.check_service_content(block.texts or {})
            out.append(guides.guide_vars(block, str(item.get("product_title") or ""), locale, store.primary_locale))
        if not out:
            raise templates.TemplateRefused("none of the email's guides exists any more")
        return out

    @staticmethod
    def _order_products(session: Session, order: Order | None) -> list[tuple[int | None, str, dict[str, Any]]]:
        """Return each product of an order once: its id, title and image variables."""
        if order is None:
            return []
        seen: dict[int | None, tuple[int | None, str, dict[str, Any]]] = {}
        for line, product in session.execute(
                select(OrderLine, Product).join(Product, Product.id == OrderLine.product_id, isouter=True)
                .where(OrderLine.order_id == order.id).order_by(OrderLine.id)):
            key = product.id if product else None
            if key not in seen:
                title = (product.title if product else None) or line.title
                seen[key] = (key, title, product_image(product, title))
        return list(seen.values())

    def _discount(self, message: Message, store: Store, customer: Customer | None) -> dict[str, Any] | None:
        payload = message.payload or {}
        if (message.flow, message.step) not in OFFER_STEPS or store.platform != "shopify" or customer is None \
                or payload.get("discount_created"):
            return None
        if not payload.get("discount_code"):
            return None
        discount: dict[str, Any] = {"store_id": store.id, "code": payload["discount_code"],
                                    "customer": customer.external_id}
        if payload.get("discount_free_shipping"):
            discount.update(free_shipping=True, ends_at=payload.get("discount_ends_at"))
        elif payload.get("discount_amount") is not None:
            discount.update(amount=str(payload["discount_amount"]), minimum=payload.get("discount_min_subtotal"),
                            ends_at=payload.get("discount_ends_at"))
        else:
            discount.update(percent=float(payload.get("discount_percent") or 10),
                            ends_at=payload.get("discount_ends_at"))
        return discount

    @staticmethod
    def _name_code(message: Message, now: datetime) -> None:
        """Give an offer its single-use code, derived from the key so every resend shows (and makes) the same one.

        A win-back code also gets its end, fixed at the first claim: a resend keeps the date the email showed.
        """
        payload = message.payload or {}
        prefix = CODE_PREFIXES.get((message.flow, message.step))
        if prefix is not None and (message.flow, message.step) in OWN_PREFIX_STEPS and payload.get("code_prefix"):
            prefix = str(payload["code_prefix"])
        wanted = payload.get("discount_percent") or payload.get("discount_amount") or \
            payload.get("discount_free_shipping")
        if prefix is None or not wanted or payload.get("discount_code"):
            return
        digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:10].upper()
        named = {**payload, "discount_code": f"{prefix}-{digest}"}
        if payload.get("discount_valid_days"):
            named["discount_ends_at"] = (now + timedelta(days=float(payload["discount_valid_days"]))).isoformat()
        message.payload = named

    # -- send ---------------------------------------------------------------------------------------------------
    @contextmanager
    def connection(self) -> Iterator[Sender]:
        """Yield a sender over one SMTP connection (opened lazily, closed at the end of the batch).

        Order per message: connection up (connect, EHLO, STARTTLS, AUTH), discount code created, last check,
        then MAIL FROM / RCPT TO / DATA — only that last part happens after the check.
        """
        try:
            settings = mail.parse_smtp_url(self._smtp_url, self.timeout)
        except mail.SmtpConfigError as exc:
            raise DeliveryError(str(exc), permanent=False, stop_batch=True) from exc
        with mail.SmtpTransport(settings) as transport:
            def send(prepared: PreparedEmail, check: Callable[[], None]) -> str | None:
                try:
                    transport.open()
                except mail.SendError as exc:
                    raise DeliveryError(str(exc), permanent=exc.permanent, stop_batch=True) from exc
                if prepared.discount is not None:
                    self._create_discount(prepared.discount)
                check()
                try:
                    transport.send(prepared.message, prepared.sender, prepared.recipient)
                except mail.SendError as exc:
                    raise DeliveryError(str(exc), permanent=exc.permanent, bounce=exc.bounce,
                                        address=prepared.recipient, stop_batch=exc.connection) from exc
                return prepared.message_id

            yield send

    def _create_discount(self, discount: dict[str, Any]) -> None:
        """Create the offer's single-use code in Shopify; ``TAKEN`` for our own code means it exists."""
        try:
            client = shopify_client(self.ctx, discount["store_id"])
            if discount.get("free_shipping"):
                create_free_shipping_code(client, discount["code"], customer_external_id=discount["customer"],
                                          starts_at=self.ctx.clock.now(), ends_at=_as_datetime(discount.get("ends_at")))
            elif "amount" in discount:
                minimum = discount.get("minimum")
                create_discount_code(client, discount["code"], customer_external_id=discount["customer"],
                                     starts_at=self.ctx.clock.now(), amount=Decimal(discount["amount"]),
                                     minimum_subtotal=Decimal(str(minimum)) if minimum else None,
                                     ends_at=_as_datetime(discount.get("ends_at")))
            else:
                create_discount_code(client, discount["code"], customer_external_id=discount["customer"],
                                     starts_at=self.ctx.clock.now(), percent=discount["percent"],
                                     ends_at=_as_datetime(discount.get("ends_at")))
        except ShopifyUserError as exc:
            if "TAKEN" not in exc.codes:
                raise DeliveryError(f"Shopify refused the discount code: {exc}", permanent=True) from exc
        except ReinstallNeeded as exc:
            raise DeliveryError(f"cannot create the discount code: {exc}", permanent=True) from exc
        except ShopifyGrantError as exc:
            raise DeliveryError(f"cannot create the discount code: {exc}", permanent=False) from exc
        except (ShopifyError, LookupError, OSError) as exc:
            raise DeliveryError(f"cannot create the discount code: {exc}", permanent=False) from exc

    def after_sent(self, session: Session, message_id: int, prepared: PreparedEmail) -> None:
        """Remember that the discount code exists, so a later resend does not create it again."""
        if prepared.discount is None:
            return
        message = session.get(Message, message_id)
        if message is not None:
            message.payload = {**(message.payload or {}), "discount_created": True}


def _unsubscribe_extra(message: Message, store: Store, customer: Customer | None) -> dict[str, Any]:
    """Return what an unsubscribe token carries besides the message: the store and the address's digest.

    A shop/redact after a reinstall may erase the message while the email is still in the inbox; with these the
    unsubscribe still holds (plugin.public.views).
    """
    address = message.to_address or (customer.email if customer else None)
    return {"st": store.id, "a": suppression_digest(address)} if address else {}


def template_of(message: Message) -> tuple[str, str]:
    """Return the template (flow, step) a message renders: a guide's test send shows the usage-guide email."""
    if message.flow == "test" and (message.payload or {}).get("guide_block_id"):
        return "usage_guide", "main"
    return message.flow, message.step


def _as_decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def delivery_vars(session: Session, message: Message, locale: str) -> dict[str, Any]:
    """Return a delivery update's variables: its milestones (named in ``locale``, with time and place), the
    headline milestone, the parcel's tracking and the latest estimate."""
    payload = message.payload or {}
    ui = templates.ui_strings(locale)
    parcel = session.get(Parcel, payload.get("parcel_id")) if payload.get("parcel_id") else None
    told = list(payload.get("milestones") or [])
    steps = []
    if parcel is not None:
        events = {e.status: e for e in sorted(parcel.events, key=lambda e: (e.happened_at, e.id), reverse=True)}
        for code in told:
            event = events.get(code)
            when = event.happened_at if event is not None else parcel.shipped_at
            place = ", ".join(p for p in ((event.city, event.country) if event is not None else ()) if p)
            steps.append({"code": code, "label": ui.get(f"m_{code}", code), "when": when, "place": place})
    headline = str(payload.get("milestone") or (told[-1] if told else ""))
    return {"milestone": headline, "milestone_label": ui.get(f"m_{headline}", headline), "milestones": steps,
            "estimated_delivery": None if headline == "DELIVERED" or parcel is None else parcel.estimated_delivery_at,
            "parcel": {"tracking_company": parcel.tracking_company if parcel else None,
                       "tracking_number": parcel.tracking_number if parcel else None,
                       "tracking_url": parcel.tracking_url if parcel else None}}


def _as_date(value: Any, zone: ZoneInfo) -> date | None:
    when = _as_datetime(value)
    return when.astimezone(zone).date() if when else None


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value)
    return None


def product_image(product: Product | None, title: str) -> dict[str, str | None]:
    """Return a product's image variables: an https URL (else None) and alt text (the title when none is set)."""
    url = product.image_url if product is not None else None
    if not url or urlsplit(url).scheme != "https":
        # Only https images: a plain-http one is blocked or flagged by mail clients and leaks the open.
        return {"image_url": None, "image_alt": title}
    return {"image_url": url, "image_alt": (product.image_alt or "").strip() or title}


def _product_url(shop_url: str, product: Product | None) -> str:
    if product is not None and product.handle and shop_url:
        return f"{shop_url}/products/{product.handle}"
    return shop_url
