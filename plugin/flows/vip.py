"""VIP welcome and perks: when a customer enters the VIP segment, a welcome email with an exclusive code, and the
store's VIP tag on the Shopify customer for as long as they stay (marketing).

Who is VIP is the analytics' answer (``customer_metrics.segment``, computed daily with the merchant's segment
rules: 12-month spend over the threshold and enough orders). The hourly job (``run``):

1. **membership** — ``vip_member`` follows the segment in two set-based statements: a VIP without a row (or whose
   row says they left) enters now; a member no longer VIP leaves now;
2. **tags** — each member whose Shopify tag differs from what they are gets ``tagsAdd`` (in the segment) or
   ``tagsRemove`` (left); when the merchant renames the tag, every member carrying the old name gets
   ``tagsRemove`` of it, then ``tagsAdd`` of the new one. One customer at a time, each result committed at once;
   both calls are no-ops when the tag is already as wanted, so a retry after a crash is harmless. A refusal is
   kept on the row and retried next hour. Tags are not messages: they need no consent (the merchant's own
   discounts and theme read them);
3. **welcome** — the flow runner writes the welcome email of members who entered within the last week and were
   never welcomed (once per customer), with the merchant's perk (``perk_kind``) as a single-use code for them
   only, created by the email channel when it sends — a percentage or fixed amount off through
   ``discountCodeBasicCreate``, or free shipping through ``discountCodeFreeShippingCreate`` — named from the
   idempotency key, so a retried dispatch meets ``TAKEN`` for its own code and never makes a second one.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from connectors.shopify.errors import ShopifyAuthError, ShopifyError, ShopifyGraphQLError, ShopifyUserError
from connectors.shopify.tags import add_customer_tags, remove_customer_tags
from plugin import flow_schemas
from plugin.auth.tokens import ReinstallNeeded, ShopifyGrantError
from plugin.context import JobContext
from plugin.flows.audience import contact_reason
from plugin.flows.base import Exit, Flow, FlowRun, Rows, Step
from plugin.marketplaces import shopify_client
from plugin.messaging import handover
from plugin.messaging.outbox import message_row
from plugin.models import Customer, CustomerMetrics, Message, Store, VipMember

log = logging.getLogger("aftercare.flows.vip")

NAME = "vip"
SEGMENT = "vip"
# A member who entered longer ago than this (the job was down, or the flow was off) is not welcomed late.
WELCOME_WINDOW_DAYS = 7


def refresh_members(session: Session, store_id: int, now: Any, tag: str) -> dict[str, int]:
    """Bring ``vip_member`` in line with the segment: who entered, who left; return both counts."""
    # A redacted customer's metrics row may still say VIP until the next refresh: they are never a member.
    vip = (select(CustomerMetrics.customer_id).join(Customer, Customer.id == CustomerMetrics.customer_id)
           .where(CustomerMetrics.store_id == store_id, CustomerMetrics.segment == SEGMENT,
                  Customer.redacted_at.is_(None)))
    left = session.execute(
        update(VipMember).where(VipMember.store_id == store_id, VipMember.left_at.is_(None),
                                VipMember.customer_id.not_in(vip))
        .values(left_at=now).execution_options(synchronize_session=False)).rowcount or 0
    back = session.execute(
        update(VipMember).where(VipMember.store_id == store_id, VipMember.left_at.is_not(None),
                                VipMember.customer_id.in_(vip))
        .values(left_at=None, entered_at=now, tag=tag).execution_options(synchronize_session=False)).rowcount or 0
    new = [{"customer_id": cid, "store_id": store_id, "entered_at": now, "tagged": False, "tag": tag}
           for cid in session.scalars(vip.where(~exists().where(VipMember.customer_id == CustomerMetrics.customer_id)))]
    if new:
        session.execute(VipMember.__table__.insert(), new)
    return {"entered": len(new) + back, "left": int(left)}


def _tag_work(session: Session, store_id: int, wanted: str) -> list[tuple[int, str, str, str]]:
    """Return (customer id, external id, tag on Shopify, tag wanted) of members whose Shopify tag is out of line.

    The tag on Shopify is ``""`` when there is none to remove (never tagged), the one wanted ``""`` when nothing is
    to be added (they left, or the merchant cleared the tag name).
    """
    rows = session.execute(
        select(VipMember.customer_id, Customer.external_id, VipMember.tag, VipMember.tagged, VipMember.left_at)
        .join(Customer, Customer.id == VipMember.customer_id)
        .where(VipMember.store_id == store_id, Customer.redacted_at.is_(None),
               ((VipMember.left_at.is_(None)) & (VipMember.tagged.is_(False) | (VipMember.tag != wanted)))
               | ((VipMember.left_at.is_not(None)) & VipMember.tagged.is_(True)))
        .order_by(VipMember.customer_id))
    work = []
    for cid, ext, tag, tagged, left_at in rows:
        old = (tag or "") if tagged else ""
        new = wanted if left_at is None else ""
        if old != new:
            work.append((cid, ext, old, new))
    return work


def _may_tag(session: Session, store_id: int, customer_id: int) -> bool | None:
    """Say, just before one tag call, whether it may still go: None once the store is uninstalled (stop the batch),
    False when the customer was redacted (or deleted) since the batch was read, else True.

    Read under the customer's hand-over lock, which customers/redact takes: a redaction in progress is waited for.
    """
    store = session.get(Store, store_id)
    if store is None or not store.is_sending_allowed:
        return None
    handover.lock_recipients(session, store_id, [customer_id])
    return session.scalar(select(Customer.id).where(Customer.id == customer_id, Customer.redacted_at.is_(None))
                          ) is not None


def push_tags(ctx: JobContext, store_id: int, wanted: str, limit: int = 500) -> dict[str, int]:
    """Bring the VIP tag in Shopify in line for up to ``limit`` members (add, remove, or rename); return counts.

    A renamed tag (the merchant changed ``tag``) is removed (``tagsRemove``) before the new one is added
    (``tagsAdd``); the row keeps the old name until both went through, so a crash in between repeats the removal
    (a no-op) and then adds the new name.
    """
    counts = {"tags_added": 0, "tags_removed": 0, "tag_errors": 0}
    wanted = wanted.strip()
    with ctx.database.session() as session:
        work = _tag_work(session, store_id, wanted)[:limit]
    if not work:
        return counts
    client = shopify_client(ctx, store_id)
    for customer_id, external_id, old, new in work:
        with ctx.database.session() as session:
            allowed = _may_tag(session, store_id, customer_id)
        if allowed is None:
            break
        if not allowed:
            continue
        error, done = None, {"tags_added": 0, "tags_removed": 0}
        try:
            if old:
                remove_customer_tags(client, external_id, [old])
                done["tags_removed"] = 1
            if new:
                add_customer_tags(client, external_id, [new])
                done["tags_added"] = 1
        except ShopifyUserError as exc:
            error = str(exc)
        except (ReinstallNeeded, ShopifyGrantError, ShopifyAuthError, ShopifyGraphQLError) as exc:
            # No grant, or the request itself is refused (e.g. ACCESS_DENIED without write_customers): every other
            # customer would fail the same way, so stop and try again next hour.
            log.warning("cannot tag VIP customers", extra={"store_id": store_id, "error": str(exc)})
            counts["tag_errors"] += 1
            break
        except ShopifyError as exc:
            error = str(exc)
        with ctx.database.session() as session:
            values: dict[str, Any] = {"tag_error": error[:2000] if error else None}
            if error is None:
                values.update(tagged=bool(new), tag=new or old)
            session.execute(update(VipMember).where(VipMember.customer_id == customer_id).values(**values))
        if error:
            counts["tag_errors"] += 1
        else:
            for key, n in done.items():
                counts[key] += n
    return counts


def perk_payload(settings: Any) -> dict[str, Any]:
    """Return the welcome code's payload for the merchant's chosen perk (empty: the welcome carries no code)."""
    kind = settings["perk_kind"]
    if kind == "free_shipping":
        perk: dict[str, Any] = {"discount_free_shipping": True}
    elif kind == "amount" and settings["perk_amount"]:
        perk = {"discount_amount": settings["perk_amount"]}
    elif kind == "percent" and settings["perk_percent"]:
        perk = {"discount_percent": settings["perk_percent"]}
    else:
        return {}
    return {**perk, "discount_valid_days": settings["code_valid_days"]}


def due_welcomes(run: FlowRun) -> Rows:
    """Return welcome rows for members who entered within the last week and were never welcomed."""
    store, settings = run.store, run.settings
    welcomed = exists().where(Message.store_id == store.id, Message.flow == NAME, Message.step == "main",
                              Message.customer_id == VipMember.customer_id)
    query = (select(VipMember.customer_id, Customer.email, Customer.locale)
             .join(Customer, Customer.id == VipMember.customer_id)
             .where(VipMember.store_id == store.id, VipMember.left_at.is_(None),
                    VipMember.entered_at > run.now - timedelta(days=WELCOME_WINDOW_DAYS), ~welcomed,
                    Customer.redacted_at.is_(None))
             .order_by(VipMember.customer_id))
    rows = []
    for customer_id, email, locale in run.session.execute(query):
        reason = contact_reason(email, store.protected_data_access)
        extra: dict[str, Any] = {"status": "skipped", "skip_reason": reason} if reason else {}
        payload: dict[str, Any] = {"perk_text": settings["perk_text"],
                                   "recommendations": settings["recommendations"]}
        payload.update(perk_payload(settings))
        rows.append(message_row(store_id=store.id, flow=NAME, step="main", key_parts=(f"customer={customer_id}",),
                                scheduled_for=run.now, customer_id=customer_id, locale=locale, marketing=True,
                                to_address=email if store.protected_data_access else None, payload=payload, **extra))
    return rows


def run(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: follow the VIP segment, bring the Shopify tags in line, then write the welcome emails due."""
    from plugin.flows import runner

    with ctx.database.session() as session:
        store = session.get(Store, store_id)
        settings = runner.load_settings(session, ctx.config, FLOW, store_id)
        refused = runner.refusal(FLOW, store, settings)
        if refused:
            return refused
        counts = refresh_members(session, store_id, ctx.clock.now(), settings["tag"])
    counts.update(push_tags(ctx, store_id, settings["tag"]))
    counts.update(runner.run(ctx, store_id, NAME))
    return counts


FLOW = Flow(
    name=NAME,
    title="VIP welcome and perks",
    about="Welcome customers who enter the VIP segment with an exclusive code; tag them in Shopify while VIP.",
    flow_class="marketing",
    platforms=("shopify",),
    trigger="customers entering the VIP segment (customer_metrics, the merchant's segment rules)",
    audience=("customers in the VIP segment", "marketing consent (checked at send time)", "welcomed once"),
    timing="within the hour after the daily segment refresh, in the send window",
    steps=(
        Step("main", due_welcomes, "the VIP welcome with an exclusive code", template="main", counter="welcomed",
             not_sent_counter="not_sent"),
    ),
    exits=(
        Exit("left_segment", "the customer left the VIP segment: the tag is removed (tagsRemove)"),
        Exit("no_consent", "no marketing consent (checked at send time)"),
        Exit("unsubscribed", "the address is on the suppression list (checked at send time)"),
    ),
    idempotency_key="<store>:vip:customer=<id>:step=main",
    settings=flow_schemas.VIP,
    counts=("welcomed", "not_sent"),
)

