"""The ``amazon_solicitation`` channel: Amazon's ``productReviewAndSellerFeedback`` request, once per order.

Amazon's rule (https://developer-docs.amazon.com/sp-api/docs/solicitations-api-v1-reference): one solicitation
per order, from 5 days after EarliestDeliveryDate to 30 days after LatestDeliveryDate; a second request gets
403 "not available". Every send asks getSolicitationActionsForOrder first and posts only when the action is
offered. Nothing about the buyer's rating, complaint or sentiment is looked at (no selective solicitation).

Orders Amazon gives no deliver-by window (many FBA orders) carry an *estimated* window in their payload, planned by
plugin/flows/amazon_review_request.py from the latest ship date + the store's transit days: the first ask is 5
days after that estimated delivery, the last one 30 days after it. The estimate only decides when to ask: nothing
is sent unless the actions list offers the solicitation.

Outcomes, recorded truthfully: ``sent``; not offered → back in a day (``not_offered``), or skipped once the
window would close first (``not_offered``; ``estimated_window_closed`` when the window was our estimate); a 403
"not available" to the send → skipped ``already_solicited``, never retried;
throttled or Amazon unavailable → handed back for the next dispatch run (no attempt used), and the seller's
other messages wait too; LWA refusing the seller → the seller's messages wait an hour (``amazon_not_authorized``);
a 5xx to the send itself (Amazon may have recorded it) → ``Unconfirmed``, settled by ``reconcile``.

``reconcile`` is asked about a row a crashed dispatcher left in ``sending``: still offered → nothing reached
Amazon, send again; not offered and the row never passed the last check (no ``handed_at``) → our create call was
never made, so it goes back to the daily asking; no longer offered after the hand-over while Amazon's window is
certainly still open and the order eligible → a solicitation exists, ours: ``sent`` (at the hand-over). Amazon's
window closes 30 days after the delivery ("the 5-30 day range after the order delivery date"), and a delivery
can come before our latest delivery date but never before the shipment, so the window is certain only until 30
days after the order shipped (and within our own window). Past that, or once the order was cancelled, Amazon
would not offer it either way: whether ours arrived is unknown, ``skipped`` ``delivery_unknown``, never claimed
as sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from connectors.amazon.client import SpApiSession
from connectors.amazon.errors import AccessDenied, AmazonError, AuthError, QuotaExceeded, ServerError
from connectors.amazon.solicitations import review_request_offered, send_review_request
from plugin.config import ConfigError
from plugin.context import JobContext
from plugin.logs import log_context
from plugin.marketplaces import lwa_app, open_session
from plugin.messaging.channels.base import DeliveryError, NotSent, Reconciled, Sender, Unconfirmed
from plugin.messaging.policy import Decision
from plugin.models import Message, Order, Store
from plugin.secrets_store import get_credential

log = logging.getLogger("aftercare.amazon.solicitations")

CHANNEL = "amazon_solicitation"
WINDOW_OPENS = timedelta(days=5)
WINDOW_CLOSES = timedelta(days=30)
# Not offered yet (Amazon may still be processing the delivery): ask again the next day.
NOT_OFFERED_RETRY = timedelta(days=1)
# Throttled or unavailable: the next dispatch run (every minute) tries again; this one leaves the seller alone.
BUSY_RETRY = timedelta(minutes=1)
# LWA refused the seller: ask again in an hour, not every dispatch run (the sync job reports the failure too).
NOT_AUTHORIZED_RETRY = timedelta(hours=1)


def window(order: Order) -> tuple[datetime, datetime] | None:
    """Return Amazon's solicitation window [opens, closes] of an order, or None without delivery dates."""
    if order.earliest_delivery_at is None:
        return None
    latest = order.latest_delivery_at or order.earliest_delivery_at
    return order.earliest_delivery_at + WINDOW_OPENS, latest + WINDOW_CLOSES


def shipped_by(order: Order) -> datetime | None:
    """Return the base of the estimated delivery of an order without a deliver-by window (latest ship date)."""
    return order.latest_ship_at or order.fulfilled_at


def estimated_window(order: Order, transit: timedelta) -> tuple[datetime, datetime] | None:
    """Return the window [opens, closes] estimated from the latest ship date + transit (no deliver-by window)."""
    base = shipped_by(order)
    if base is None:
        return None
    return base + transit + WINDOW_OPENS, base + transit + WINDOW_CLOSES


def surely_open_until(order: Order, handed_at: datetime) -> datetime:
    """Return until when Amazon's window is certainly open, given that Amazon offered the request at ``handed_at``.

    Amazon's window ends 30 days after the delivery, and a parcel is delivered after it ships (after the purchase
    when no shipment is known); within our own window when Amazon gave one.
    """
    shipped = order.fulfilled_at or order.created_at_remote
    until = max(handed_at, shipped + WINDOW_CLOSES)
    bounds = window(order)
    return min(until, bounds[1]) if bounds is not None else until


def _payload_window(message: Message) -> tuple[datetime, datetime] | None:
    """Return the estimated window the planner put in the payload, if any."""
    raw = (message.payload or {}).get("estimated_window")
    if not raw:
        return None
    return datetime.fromisoformat(raw[0]), datetime.fromisoformat(raw[1])


def excluded_reason(order: Order) -> str | None:
    """Return why an order may not be solicited (cancelled, returned, refunded: the only reasons), or None."""
    if order.cancelled_at is not None:
        return "cancelled"
    if order.returned:
        return "returned"
    if order.refunded:
        return "refunded"
    return None


@dataclass(frozen=True)
class PreparedSolicitation:
    """One order's solicitation, ready to ask and send for: the seller's store and Amazon's ids."""

    store: Store
    amazon_order_id: str
    marketplace_id: str
    closes: datetime
    estimated: bool = False


class AmazonSolicitationChannel:
    """Sends review solicitations through the Solicitations API, one SP-API session per seller and batch."""

    name = CHANNEL

    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        # A claim older than this is presumed crashed and reconciled by asking Amazon.
        self.claim_timeout = timedelta(
            minutes=ctx.config.get("amazon.solicitation_claim_timeout_minutes"))

    # -- prepare (database only) --------------------------------------------------------------------------------
    def prepare(self, session: Session, message: Message, decision: Decision) -> PreparedSolicitation:
        """Check the order and Amazon's window at send time, and that the seller is connected."""
        now = self.ctx.clock.now()
        order = session.get(Order, message.order_id) if message.order_id else None
        if order is None:
            raise NotSent("order_deleted", detail="the order is no longer in the database")
        reason = excluded_reason(order)
        if reason:
            raise NotSent("order_cancelled", detail=f"the order was {reason}")
        bounds = window(order)
        estimated = bounds is None
        if estimated:
            bounds = _payload_window(message)
        if bounds is None:
            raise NotSent("no_delivery_date", detail="the order has no EarliestDeliveryDate and no ship-by date")
        opens, closes = bounds
        whose = "the estimated window" if estimated else "Amazon's window"
        if now > closes and estimated:
            raise NotSent("estimated_window_closed", detail=f"{whose} closed at {closes:%Y-%m-%d %H:%M} UTC")
        if now > closes:
            raise NotSent("window_closed", detail=f"{whose} closed at {closes:%Y-%m-%d %H:%M} UTC")
        if now < opens:
            raise NotSent("window_not_open", retry_at=opens, detail=f"{whose} opens at {opens:%Y-%m-%d %H:%M} UTC")
        store = session.get(Store, message.store_id)
        try:
            lwa_app(self.ctx)
        except ConfigError as exc:
            raise NotSent("amazon_not_authorized", retry_at=now + NOT_AUTHORIZED_RETRY, detail=str(exc)) from exc
        if store is None or not get_credential(store, self.ctx.vault, "refresh_token_enc"):
            raise NotSent("amazon_not_authorized", retry_at=now + NOT_AUTHORIZED_RETRY,
                          detail="the seller has no LWA refresh token; run `aftercare stores add-amazon` again")
        return PreparedSolicitation(store=store, amazon_order_id=order.external_id,
                                    marketplace_id=order.marketplace_id or "", closes=closes, estimated=estimated)

    # -- send (network) -----------------------------------------------------------------------------------------
    @contextmanager
    def connection(self) -> Iterator[Sender]:
        """Yield a sender that asks, then solicits; one SP-API session per seller, opened when first needed."""
        sessions: dict[int, SpApiSession] = {}
        # Sellers whose calls stopped in this batch (throttled, unavailable, refused): their messages wait.
        held: dict[int, NotSent] = {}

        def send(prepared: PreparedSolicitation, check: Callable[[], None]) -> str | None:
            store_id = prepared.store.id
            if store_id in held:
                raise NotSent(held[store_id].reason, retry_at=held[store_id].retry_at, detail=held[store_id].detail)
            if store_id not in sessions:
                sessions[store_id] = open_session(self.ctx, prepared.store)
            with log_context(store_id=store_id):
                try:
                    return self._ask_then_send(sessions[store_id], prepared, check)
                except NotSent as exc:
                    if exc.reason in ("throttled", "amazon_unavailable", "amazon_not_authorized"):
                        held[store_id] = exc
                    raise

        try:
            yield send
        finally:
            for store_id, api in sessions.items():
                log.info("amazon solicitation calls", extra={"store_id": store_id, **api.stats})
                api.close()

    def _ask_then_send(self, api: SpApiSession, prepared: PreparedSolicitation, check: Callable[[], None]
                       ) -> str | None:
        """Gate on the actions list, take the last check, then send once; map Amazon's answers to outcomes."""
        order_id, marketplace_id = prepared.amazon_order_id, prepared.marketplace_id
        try:
            offered = review_request_offered(api, order_id, marketplace_id)
        except AmazonError as exc:
            raise self._not_reached(exc, "asking whether the solicitation is offered") from exc
        now = self.ctx.clock.now()
        if not offered:
            if now + NOT_OFFERED_RETRY > prepared.closes:
                if prepared.estimated:
                    raise NotSent("estimated_window_closed",
                                  detail="Amazon gave no delivery window and did not offer the solicitation on any day "
                                         f"of the estimated window (it closes {prepared.closes:%Y-%m-%d %H:%M} UTC)")
                raise NotSent("not_offered", detail="Amazon did not offer the solicitation before its window closed")
            raise NotSent("not_offered", retry_at=now + NOT_OFFERED_RETRY, detail="not offered by Amazon yet")
        check()
        try:
            result = send_review_request(api, order_id, marketplace_id)
        except ServerError as exc:
            # Amazon may have recorded it: never resend blindly, let reconcile ask the actions list.
            raise Unconfirmed(f"{type(exc).__name__}: {exc}") from exc
        except AmazonError as exc:
            raise self._not_reached(exc, "sending the solicitation") from exc
        if result.outcome == "sent":
            after_send = self.ctx.extras.get("after_solicitation_sent")
            if after_send is not None:
                after_send(order_id)  # tests/amazon_kill_worker.py dies here, before the result is committed
            return None
        if "not available" in result.message.lower():
            raise NotSent("already_solicited", detail=result.message)
        raise NotSent("not_offered", detail=result.message)

    def _not_reached(self, exc: AmazonError, doing: str) -> Exception:
        """Map a failed call that Amazon did not act on to a hand-back or a permanent failure."""
        now = self.ctx.clock.now()
        detail = f"{doing}: {type(exc).__name__}: {exc}"
        if isinstance(exc, AuthError | AccessDenied):
            return NotSent("amazon_not_authorized", retry_at=now + NOT_AUTHORIZED_RETRY, detail=detail)
        if isinstance(exc, QuotaExceeded):
            return NotSent("throttled", retry_at=now + BUSY_RETRY, detail=detail)
        if isinstance(exc, ServerError):
            return NotSent("amazon_unavailable", retry_at=now + BUSY_RETRY, detail=detail)
        # 400/404: Amazon does not know this order for this seller; asking again cannot help.
        return DeliveryError(f"Amazon refused the request ({detail})", permanent=True)

    def after_sent(self, session: Session, message_id: int, prepared: PreparedSolicitation) -> None:
        """Nothing to record beyond the message row."""

    # -- reconcile (a row left in "sending") ----------------------------------------------------------------------
    def reconcile(self, message: Message, now: datetime) -> Reconciled:
        """Ask Amazon whether the solicitation is still offered and say what that means for this row."""
        lost = message.claimed_at
        with self.ctx.database.session() as session:
            order = session.get(Order, message.order_id) if message.order_id else None
            store = session.get(Store, message.store_id)
        if order is None or store is None:
            return Reconciled("skipped", "reconciled: the order is gone; whether the interrupted send reached "
                                         "Amazon is unknown", reason="delivery_unknown")
        try:
            with open_session(self.ctx, store) as api, log_context(store_id=store.id):
                offered = review_request_offered(api, order.external_id, order.marketplace_id or "")
        except (AmazonError, ConfigError) as exc:
            return Reconciled("sending", f"reconcile could not ask Amazon ({type(exc).__name__}: {exc}); "
                                         "asking again later")
        if offered:
            return Reconciled("scheduled", "reconciled: Amazon still offers the solicitation, so the interrupted "
                                           "send did not reach it; sending again")
        handed = message.handed_at
        if handed is None:
            # The last check comes before the create call: without a hand-over our call was never made.
            return Reconciled("scheduled", "reconciled: not offered, but the interrupted send stopped before the "
                                           "create call, so nothing of ours reached Amazon; asking again")
        answered = self.ctx.clock.now()
        reason = excluded_reason(order)
        open_until = surely_open_until(order, handed)
        if answered <= open_until and reason is None:
            # While the window is certainly open an eligible order stops being offered only once a solicitation
            # exists, and Amazon offered it right before our hand-over.
            return Reconciled("sent", "reconciled: no longer offered after an interrupted send, while Amazon's "
                                      "window is certainly open: the solicitation was recorded by Amazon",
                              sent_at=handed)
        bounds = window(order)
        if reason:
            why = f"the order was {reason}"
        elif bounds is not None and answered > bounds[1]:
            why = "its window closed meanwhile"
        else:
            why = (f"Amazon's window may have closed meanwhile (30 days after a delivery we do not know; certainly "
                   f"open only until {open_until:%Y-%m-%d %H:%M} UTC)")
        return Reconciled("skipped", f"reconciled: no longer offered after an interrupted send at "
                                     f"{lost:%Y-%m-%d %H:%M} UTC, but {why}, so Amazon would not offer it either "
                                     "way: whether it reached Amazon is unknown",
                          reason="delivery_unknown")
