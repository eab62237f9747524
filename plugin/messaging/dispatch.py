"""The dispatcher: claim due outbox rows, apply the send policy, send through the channels, record results.

One message at a time, in three steps:

1. **Claim** (one transaction, committed before any network I/O): lock the next due ``scheduled`` row
   (``FOR UPDATE SKIP LOCKED`` on PostgreSQL so several dispatchers share the work; SQLite's
   ``BEGIN IMMEDIATE`` serialises claimers), run the send policy (skip or reschedule are recorded right
   there), render it, generate and store its Message-ID, and mark it ``sending`` with ``claimed_by``,
   ``claimed_at`` and ``attempts + 1``. The frequency cap is counted under a per-customer lock held to the
   end of this transaction, so two dispatchers never both pass it for the same customer.
2. **Send** over a connection shared by the whole batch (one SMTP session per ``dispatch_due`` call). Once the
   connection is set up and any discount code exists, the channel calls the **last check**
   (plugin/messaging/handover.py) right before it hands the message over: installed, enabled, consent,
   suppression and redaction are read again under the locks that unsubscribes, suppressions, consent changes,
   uninstall and redaction take, so none of them can commit in between unnoticed.
3. **Record** (second transaction): ``sent``; or a retry with exponential backoff; or ``failed`` (a permanent
   refusal, or out of attempts), with the error kept. A 5xx refusal of the recipient also puts the address
   on the suppression list (reason ``bounce``).

Crashes and the one edge no protocol closes
-------------------------------------------
If the process dies between steps 1 and 3, the row stays ``sending``. ``reconcile_stale`` (run at the start of
every ``dispatch_due``) hands such rows back to ``scheduled`` once their claim is older than
``mail.claim_timeout_seconds``; they are not resent blindly before that, and never by a dispatcher that still
holds them. SMTP offers no way to ask the server "did you receive Message-ID X?", so one case stays open: the
server accepted DATA (250) and we died before committing ``sent``. That message is then sent a second time.
The design bounds it:

- a dispatcher has at most one message between "DATA accepted" and "``sent`` committed" at any moment, so
  one crash causes **at most one duplicate**;
- the resend carries the **same Message-ID** (persisted at claim time), so receiving servers, ESPs and mail
  clients that de-duplicate by Message-ID can drop it;
- each claim counts as an attempt, so a message that crashes its dispatcher every time ends ``failed`` after
  ``mail.max_attempts`` claims instead of looping.

Rows claimed but never attempted (nothing was on the wire) are resent after a crash without any duplicate.

Channels that answer for themselves
-----------------------------------
A channel's send may raise ``NotSent`` (skipped with a reason code, or handed back for ``retry_at`` without
counting an attempt and not claimed again in this run) or ``Unconfirmed`` (the row stays ``sending``). A channel
with a ``reconcile`` hook (Amazon solicitations: Amazon can be asked whether the solicitation is still offered)
closes the edge above: its stale rows are taken over one by one (``outbox.take_stale``, committed before the
hook's network call) and settled by what the hook found out, never resent blindly.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from plugin.context import JobContext
from plugin.messaging import handover, outbox, policy
from plugin.messaging.channels import Channel, DeliveryError, NotSent, Reconciled, Unconfirmed, build_channels
from plugin.messaging.handover import HandOverRefused
from plugin.messaging.suppression import suppress
from plugin.models import Message

log = logging.getLogger("aftercare.messaging.dispatch")


@dataclass(frozen=True)
class DispatchSettings:
    """The dispatcher's knobs (``[mail]`` in app.toml)."""

    claim_timeout: timedelta
    max_attempts: int
    retry_base_seconds: float
    retry_max_seconds: float
    batch_size: int

    @classmethod
    def from_context(cls, ctx: JobContext) -> DispatchSettings:
        """Read the settings from the job context's configuration."""
        get = ctx.config.get
        return cls(claim_timeout=timedelta(seconds=get("mail.claim_timeout_seconds")),
                   max_attempts=get("mail.max_attempts"),
                   retry_base_seconds=get("mail.retry_base_seconds"),
                   retry_max_seconds=get("mail.retry_max_seconds"),
                   batch_size=get("mail.batch_size"))


def default_worker_id() -> str:
    """Name this dispatcher process (host and pid), as stored in ``message.claimed_by``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class _Claimed:
    message_id: int
    channel: str
    prepared: Any
    claim: handover.Claim


def dispatch_due(ctx: JobContext, limit: int | None = None, worker_id: str | None = None,
                 channels: list[str] | None = None) -> dict[str, int]:
    """Send up to ``limit`` due messages; return counts (sent, retried, failed, skipped, rescheduled ...)."""
    settings = DispatchSettings.from_context(ctx)
    worker = worker_id or default_worker_id()
    limit = settings.batch_size if limit is None else limit
    registry = build_channels(ctx, channels)
    counts: Counter[str] = Counter()
    settings_cache: dict[tuple[int, str], dict[str, Any]] = {}
    asking = [name for name, channel in registry.items() if hasattr(channel, "reconcile")]
    with ctx.database.session() as session:
        counts["reconciled"] = outbox.reconcile_stale(session, ctx.clock.now(), settings.claim_timeout,
                                                      settings.max_attempts,
                                                      channels=[n for n in registry if n not in asking])
    for name in asking:
        _reconcile_by_asking(ctx, registry[name], worker, settings, counts)
    open_senders: dict[str, Any] = {}
    stacks: list[Any] = []
    handed_back: set[int] = set()  # NotSent(retry_at=...) in this run: left for a later run
    try:
        handled = 0
        while handled < limit:
            claimed = _claim_one(ctx, registry, worker, counts, settings_cache, handed_back)
            if claimed is None:
                break
            handled += 1
            if not isinstance(claimed, _Claimed):
                continue
            channel = registry[claimed.channel]
            sender = open_senders.get(claimed.channel)
            checks: list[str | None] = []
            try:
                if sender is None:
                    manager = channel.connection()
                    sender = manager.__enter__()
                    stacks.append(manager)
                    open_senders[claimed.channel] = sender
                provider_id = sender(claimed.prepared, _last_check(ctx, claimed.claim, worker, checks))
            except HandOverRefused as exc:
                if exc.reason == handover.NOT_OURS:
                    # An unsubscribe, uninstall, redaction ... cancelled it after the claim, before hand-over.
                    counts["cancelled"] += 1
                else:
                    counts["withheld"] += 1
                    counts[f"withheld:{exc.reason}"] += 1
                log.info("message not handed over", extra={"message_id": claimed.message_id, "reason": exc.reason})
                continue
            except DeliveryError as exc:
                _record_failure(ctx, channel, claimed, worker, exc, settings, counts)
                if exc.stop_batch:
                    # The server is down or refuses us: every other message would wait out the same timeout.
                    counts["stopped"] += 1
                    break
                continue
            except NotSent as exc:
                _settle_not_sent(ctx, claimed, worker, exc, counts)
                if exc.retry_at is not None:
                    handed_back.add(claimed.message_id)
                continue
            except Unconfirmed as exc:
                _settle(ctx, claimed.message_id, worker, counts, last_error=f"unconfirmed: {exc}"[:2000])
                counts["unconfirmed"] += 1
                continue
            if checks != [None]:
                # A channel that hands a message over without the last check breaks DESIGN §5: fail loudly.
                raise RuntimeError(f"channel {claimed.channel!r} sent message {claimed.message_id} without the "
                                   "last check")
            _record_sent(ctx, channel, claimed, worker, provider_id, counts)
    finally:
        for manager in reversed(stacks):
            manager.__exit__(None, None, None)
    return {k: v for k, v in counts.items() if v}


def _last_check(ctx: JobContext, claim: handover.Claim, worker: str, outcomes: list[str | None]
                ) -> Callable[[], None]:
    """Return the check a channel calls just before hand-over: one short transaction of its own."""

    def run() -> str | None:
        # A plain connection, not an ORM session: this transaction runs once per message and needs no objects.
        with ctx.database.engine.begin() as connection:
            reason = handover.final_check(connection, ctx.config, claim, worker, ctx.clock.now())
        outcomes.append(reason)
        return reason

    return handover.checker(run)


def _claim_one(ctx: JobContext, registry: dict[str, Channel], worker: str, counts: Counter[str],
               settings_cache: dict[tuple[int, str], dict[str, Any]], skip_ids: set[int] | None = None,
               ) -> _Claimed | bool | None:
    """Claim the next due message; return it prepared, True when it was settled without sending, None if none."""
    with ctx.database.session() as session:
        now = ctx.clock.now()
        message = outbox.claim_next(session, now, list(registry), skip_ids)
        if message is None:
            return None
        decision = policy.evaluate(session, ctx.config, message, now, settings_cache)
        if decision.action == "skip":
            outbox.skip(message, decision.reason or "skipped", now)
            counts["skipped"] += 1
            counts[f"skipped:{decision.reason}"] += 1
            return True
        if decision.action == "reschedule":
            outbox.reschedule(message, decision.at or now, decision.reason or "outside_window", now)
            counts["rescheduled"] += 1
            return True
        channel = registry[message.channel]
        try:
            prepared = channel.prepare(session, message, decision)
        except DeliveryError as exc:
            message.status = "failed"
            message.last_error = str(exc)[:2000]
            message.skip_reason = None
            message.updated_at = now
            counts["failed"] += 1
            log.warning("message cannot be prepared", extra={"message_id": message.id, "error": str(exc)})
            return True
        except NotSent as exc:
            # The channel's own rule (e.g. Amazon's window), decided from the database before any claim.
            if exc.retry_at is None:
                outbox.skip(message, exc.reason, now)
            else:
                outbox.reschedule(message, exc.retry_at, exc.reason, now)
            message.last_error = exc.detail[:2000] or None
            _count_not_sent(exc, counts)
            return True
        message.skip_reason = None
        outbox.mark_claimed(message, worker, now)
        return _Claimed(message_id=message.id, channel=message.channel, prepared=prepared,
                        claim=handover.Claim.of(message, decision.address))


def _record_sent(ctx: JobContext, channel: Channel, claimed: _Claimed, worker: str, provider_id: str | None,
                 counts: Counter[str]) -> None:
    with ctx.database.session() as session:
        now = ctx.clock.now()
        if not outbox.mark_sent(session, claimed.message_id, worker, now, provider_id):
            # Our claim was reconciled meanwhile (a send slower than the claim timeout): it may go out twice.
            log.warning("claim lost before the result was recorded", extra={"message_id": claimed.message_id})
            counts["claim_lost"] += 1
            return
        channel.after_sent(session, claimed.message_id, claimed.prepared)
        counts["sent"] += 1


def _record_failure(ctx: JobContext, channel: Channel, claimed: _Claimed, worker: str, exc: DeliveryError,
                    settings: DispatchSettings, counts: Counter[str]) -> None:
    with ctx.database.session() as session:
        now = ctx.clock.now()
        message = session.get(Message, claimed.message_id)
        if message is None:
            return
        status = outbox.mark_failed_attempt(
            session, message, worker, now, str(exc), permanent=exc.permanent, max_attempts=settings.max_attempts,
            base_seconds=settings.retry_base_seconds, max_seconds=settings.retry_max_seconds)
        if exc.bounce and exc.address:
            suppress(session, message.store_id, exc.address, "bounce", detail=str(exc)[:500])
            counts["bounced"] += 1
        counts["failed" if status == "failed" else "retried"] += 1
        log.info("send failed", extra={"message_id": message.id, "status": status, "error": str(exc)})


# -- channels that answer for themselves (NotSent, Unconfirmed, reconcile hooks) -----------------------------------


def _count_not_sent(exc: NotSent, counts: Counter[str]) -> None:
    kind = "skipped" if exc.retry_at is None else "deferred"
    counts[kind] += 1
    counts[f"{kind}:{exc.reason}"] += 1


def _settle(ctx: JobContext, message_id: int, worker: str, counts: Counter[str], **values: Any) -> bool:
    """Write the outcome of our claim in its own transaction; count a lost claim."""
    with ctx.database.session() as session:
        if outbox.settle_claim(session, message_id, worker, ctx.clock.now(), **values):
            return True
    log.warning("claim lost before the result was recorded", extra={"message_id": message_id})
    counts["claim_lost"] += 1
    return False


def _settle_not_sent(ctx: JobContext, claimed: _Claimed, worker: str, exc: NotSent, counts: Counter[str]) -> None:
    values: dict[str, Any] = {"skip_reason": exc.reason, "last_error": exc.detail[:2000] or None, "claimed_by": None}
    if exc.retry_at is None:
        values["status"] = "skipped"
    else:
        # Nothing went out: the claim does not use up one of the message's attempts.
        values.update(status="scheduled", scheduled_for=exc.retry_at, attempts=Message.attempts - 1)
    if _settle(ctx, claimed.message_id, worker, counts, **values):
        _count_not_sent(exc, counts)


def _reconcile_by_asking(ctx: JobContext, channel: Any, worker: str, settings: DispatchSettings,
                         counts: Counter[str]) -> None:
    """Take over this channel's stale claims one at a time and settle each by what its ``reconcile`` finds out."""
    timeout = getattr(channel, "claim_timeout", None) or settings.claim_timeout
    while True:
        with ctx.database.session() as session:
            stale = outbox.take_stale(session, ctx.clock.now(), timeout, channel.name, worker)
        if stale is None:
            return
        found: Reconciled = channel.reconcile(stale, ctx.clock.now())
        values: dict[str, Any] = {"status": found.status, "last_error": found.detail[:2000]}
        if found.status == "sending":
            # Cannot tell yet: keep the row out of everyone's way for another claim timeout.
            values["claimed_at"] = ctx.clock.now()
        elif found.status == "scheduled" and stale.attempts >= settings.max_attempts:
            values.update(status="failed", claimed_by=None,
                          last_error=f"gave up after {stale.attempts} attempts: {found.detail}"[:2000])
        else:
            values.update(claimed_by=None, skip_reason=found.reason)
            if found.status == "sent":
                values["sent_at"] = found.sent_at or ctx.clock.now()
        if _settle(ctx, stale.id, worker, counts, **values) and found.status != "sending":
            counts["reconciled"] += 1
            counts[f"reconciled:{values['status']}"] += 1
        log.info("stale claim reconciled by asking", extra={"message_id": stale.id, "status": values["status"],
                                                            "detail": found.detail})
