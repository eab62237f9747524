"""Amazon solicitations through the dispatcher: the window at its boundaries, once per order, no gating,
throttling, overlapping dispatchers, and crashes reconciled by asking Amazon."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from datetime import datetime, timedelta
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from jobs.dispatch import dispatch_due
from plugin.flows import amazon_review_request
from plugin.messaging import outbox
from plugin.models import Message, Order, Review
from plugin.sync.amazon_run import sync_amazon_store
from plugin.tickets import open_ticket
from tests.amazon_env import start_env
from tests.conftest import wipe
from tests.paths import ROOT

DAY = timedelta(days=1)


@pytest.fixture
def env(database, tmp_path):
    """A 300-order sandbox with Amazon's rate limits, the first seller connected."""
    environment = start_env(database, tmp_path, orders=300)
    yield environment
    environment.sandbox.stop()
    wipe(database.engine)


def window(order) -> tuple[datetime, datetime]:
    """Amazon's window, computed from the sandbox's seeded order (independently of the job's code)."""
    return order.earliest_delivery_date + timedelta(days=5), order.latest_delivery_date + timedelta(days=30)


def expected_send_times(env, run_times: list[datetime]) -> dict[str, datetime]:
    """For every seller order: the first daily run inside its window where it is not cancelled."""
    out = {}
    returned = {}
    for ret in env.sandbox.returns:
        returned[ret.order_id] = min(ret.return_date, returned.get(ret.order_id, ret.return_date))
    for order in env.sandbox.orders_of(env.seller.seller_id):
        start, end = window(order)
        for t in run_times:
            if order.order_id in returned and returned[order.order_id] <= t:
                break  # returned (the returns report of that day's sync shows it): never solicited
            if order.purchase_date <= t and start <= t <= end and order.status_at(t) not in ("Canceled", "Pending"):
                out[order.order_id] = t
                break
    return out


def solicit(env, **extras) -> Counter:
    """Plan the seller's solicitations, then dispatch until nothing due is left (the job runs every minute)."""
    amazon_review_request.run(env.context(), env.store_id)
    return dispatch(env, **extras)


def dispatch(env, **extras) -> Counter:
    """Run the dispatcher batch after batch at the current time until a batch finds nothing to do."""
    total: Counter = Counter()
    for _ in range(50):
        counts = dispatch_due(env.context(**extras))
        if not counts:
            return total
        total.update(counts)
    raise AssertionError(f"the dispatcher never ran dry: {total}")


def daily(env, days: int, new_orders_per_day: int = 0) -> list[datetime]:
    """Run sync, planning and dispatch once a day for ``days`` days (new orders arriving); return the run times."""
    times = []
    start = env.clock.now()
    for k in range(days):
        env.clock.set(start + k * DAY)
        for n in range(new_orders_per_day):
            marketplaces = env.seller.marketplace_ids
            env.sandbox.add_order(env.seller.seller_id, marketplaces[(k + n) % len(marketplaces)],
                                  purchase_date=env.clock.now() - timedelta(hours=3 + n))
        times.append(env.clock.now())
        sync_amazon_store(env.context(), env.store_id)
        solicit(env)
    return times


def solicitation_calls(env) -> list[tuple[str, str, datetime]]:
    """Return (method, order id, sandbox time) of every Solicitations request the sandbox received."""
    calls = []
    for method, path, _query, when in env.recorder.calls:
        if path.startswith("/solicitations/v1/orders/"):
            calls.append((method, unquote(path.split("/")[4]), when))
    return calls


def ledger(env) -> dict[str, datetime]:
    """Return the sandbox's record of solicitations: order id → when Amazon accepted it."""
    records = env.sandbox.solicitations.records
    assert len(records) == len({r.order_id for r in records})
    return {r.order_id: r.sent_at for r in records}


def messages(env) -> dict[str, Message]:
    with env.database.session() as session:
        rows = session.scalars(select(Message).where(Message.flow == "amazon_review_request")).all()
        return {m.payload["amazon_order_id"]: m for m in rows}


def test_sixty_days_respect_the_window_at_its_boundaries_and_send_once(env):
    run_times = daily(env, 60, new_orders_per_day=2)
    expected = expected_send_times(env, run_times)
    sent = ledger(env)
    assert len(expected) > 40
    assert set(sent) == set(expected)
    for order_id, when in sent.items():
        # Sent on the first daily run inside the window (pacing may move the sandbox clock by seconds).
        assert expected[order_id] <= when < expected[order_id] + timedelta(hours=1), order_id
    orders = {o.order_id: o for o in env.sandbox.orders_of(env.seller.seller_id)}
    for method, order_id, when in solicitation_calls(env):
        start, end = window(orders[order_id])
        assert start <= when <= end, (method, order_id, when)
    # The boundaries were actually crossed during the simulation: windows opening and closing mid-run.
    opened_midway = [o for o in expected if window(orders[o])[0] > run_times[0]]
    assert len(opened_midway) > 60
    for order_id in opened_midway:
        start = window(orders[order_id])[0]
        day_before = expected[order_id] - DAY
        assert day_before < start  # the run one day earlier (day 4 after earliest delivery) made no call
        assert not [c for c in solicitation_calls(env) if c[1] == order_id and c[2] < start]
    closed = [o for o in orders.values() if window(o)[1] < run_times[0]]
    assert closed and not {o.order_id for o in closed} & {c[1] for c in solicitation_calls(env)}
    rows = messages(env)
    assert {k for k, m in rows.items() if m.status == "sent"} == set(expected)
    assert all(m.attempts == 1 and m.sent_at is not None for k, m in rows.items() if m.status == "sent")
    # Exactly one POST per solicited order: the actions check came first, no second attempt.
    posts = [c[1] for c in solicitation_calls(env) if c[0] == "POST"]
    assert sorted(posts) == sorted(expected)


def test_cancelled_orders_are_left_out(env):
    sync_amazon_store(env.context(), env.store_id)
    eligible = expected_send_times(env, [env.clock.now()])
    victim = sorted(eligible)[0]
    env.sandbox.cancel_order(victim)
    env.clock.advance(minutes=5)
    sync_amazon_store(env.context(), env.store_id)
    solicit(env)
    assert set(ledger(env)) == set(eligible) - {victim}
    assert victim not in messages(env)


def test_returned_and_refunded_orders_are_left_out_but_nothing_else(env):
    sync_amazon_store(env.context(), env.store_id)
    eligible = sorted(expected_send_times(env, [env.clock.now()]))
    afn = next(o for o in eligible if env.sandbox.orders_by_id[o].fulfillment_channel == "AFN")
    mfn = next(o for o in eligible if env.sandbox.orders_by_id[o].fulfillment_channel == "MFN")
    env.sandbox.add_return(afn, refund=False)
    env.sandbox.add_return(mfn, refund=True)
    env.clock.advance(minutes=5)
    sync_amazon_store(env.context(), env.store_id, full=True)  # full: returns reports are due again
    with env.database.session() as session:
        flags = {o.external_id: (o.returned, o.refunded) for o in session.scalars(
            select(Order).where(Order.external_id.in_([afn, mfn])))}
    assert flags == {afn: (True, False), mfn: (True, True)}
    solicit(env)
    assert set(ledger(env)) == set(expected_send_times(env, [env.clock.now()]))
    assert afn not in ledger(env) and mfn not in ledger(env)
    # A later re-read of the orders (Amazon knows nothing of returns there) keeps the flags.
    env.clock.advance(hours=1)
    sync_amazon_store(env.context(), env.store_id, full=True)
    with env.database.session() as session:
        assert session.scalar(select(Order.returned).where(Order.external_id == afn)) is True


def test_an_open_one_star_ticket_does_not_stop_the_solicitation(env):
    sync_amazon_store(env.context(), env.store_id)
    eligible = expected_send_times(env, [env.clock.now()])
    unhappy = sorted(eligible)[0]
    with env.database.session() as session:
        order = session.scalar(select(Order).where(Order.external_id == unhappy))
        review = Review(store_id=env.store_id, source="amazon_feedback", external_id=unhappy, order_id=order.id,
                        rating=1, body="Looks like a fake, item arrived damaged.",
                        created_at_remote=env.clock.now())
        session.add(review)
        session.flush()
        ticket = open_ticket(session, env.config, store_id=env.store_id, source="feedback", severity=1,
                             subject="fake", now=env.clock.now(), order_id=order.id, review_id=review.id)
        assert ticket.status == "open"
    result = solicit(env)
    assert unhappy in ledger(env)
    assert messages(env)[unhappy].status == "sent"
    assert result["sent"] == len(eligible)


def test_delay_setting_moves_the_first_day(env, database):
    from plugin import flow_settings

    with env.database.session() as session:
        flow_settings.update(session, env.config, env.store_id, "amazon_review_request",
                             {"delay_days_after_window_opens": 2})
    run_times = daily(env, 20)
    sent = ledger(env)
    orders = {o.order_id: o for o in env.sandbox.orders_of(env.seller.seller_id)}
    assert sent
    for order_id, when in sent.items():
        start = window(orders[order_id])[0] + timedelta(days=2)
        first = next(t for t in run_times if t >= start)
        assert first <= when < first + timedelta(hours=1)


def test_an_order_no_longer_offered_waits_a_day_and_is_never_posted(env):
    sync_amazon_store(env.context(), env.store_id)
    eligible = sorted(expected_send_times(env, [env.clock.now()]))
    from sandbox.amazon.solicitations import SolicitationRecord

    # The seller already asked from Seller Central: Amazon stops offering the action for that order.
    order = env.sandbox.orders_by_id[eligible[0]]
    env.sandbox.solicitations.add(SolicitationRecord(order.order_id, order.marketplace_id, env.seller.seller_id,
                                                     env.clock.now()))
    started = env.clock.now()
    result = solicit(env)
    row = messages(env)[eligible[0]]
    assert row.status == "scheduled" and started + DAY <= row.scheduled_for < started + DAY + timedelta(minutes=5)
    assert (row.skip_reason, row.attempts) == ("not_offered", 0)  # waiting, and nothing was attempted
    assert result["sent"] == len(eligible) - 1 and result["deferred:not_offered"] == 1
    assert [c for c in solicitation_calls(env) if c[0] == "POST" and c[1] == eligible[0]] == []


def test_a_403_not_available_is_recorded_as_already_solicited_and_never_retried(env):
    sync_amazon_store(env.context(), env.store_id)
    eligible = sorted(expected_send_times(env, [env.clock.now()]))
    from sandbox.amazon.solicitations import SolicitationRecord

    target = env.sandbox.orders_by_id[eligible[0]]

    def seller_clicks_request_a_review(method, path):
        # Between our actions check and our send, the seller uses Seller Central's button.
        if method == "GET" and path.endswith("/" + target.order_id):
            env.sandbox.solicitations.add(SolicitationRecord(target.order_id, target.marketplace_id,
                                                             env.seller.seller_id, env.clock.now()))

    env.recorder.after = seller_clicks_request_a_review
    result = solicit(env)
    env.recorder.after = None
    row = messages(env)[target.order_id]
    assert (row.status, row.skip_reason) == ("skipped", "already_solicited")
    assert "not available" in row.last_error
    assert result["skipped:already_solicited"] == 1 and result["sent"] == len(eligible) - 1
    first_run = env.clock.now()
    env.clock.advance(days=1)
    sync_amazon_store(env.context(), env.store_id)
    solicit(env)
    calls = [c for c in solicitation_calls(env) if c[1] == target.order_id]
    assert [c[0] for c in calls] == ["GET", "POST"]  # never asked or sent again
    assert set(ledger(env)) == set(expected_send_times(env, [first_run, env.clock.now()]))


@pytest.mark.parametrize("runs", [2, 3])
def test_overlapping_runs_send_exactly_once(env, runs):
    sync_amazon_store(env.context(), env.store_id)
    eligible = expected_send_times(env, [env.clock.now()])
    barrier = threading.Barrier(runs)
    results, errors = [], []

    def worker(n):
        try:
            barrier.wait(timeout=10)
            # Planning and dispatching overlap too: every worker plans, then dispatches as its own worker id.
            amazon_review_request.run(env.context(), env.store_id)
            results.append(dispatch_due(env.context(), limit=1000, worker_id=f"dispatcher-{n}"))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    # Overlapping dispatchers share Amazon's rate limit, so one of them may hand a row back ("deferred") for
    # the next run; what must never happen is a second solicitation. The next run finishes the deferred rows.
    assert len(messages(env)) == len(eligible)  # overlapping planners wrote each row once
    results.append(dispatch(env))
    assert set(ledger(env)) == set(eligible)
    assert sum(r.get("sent", 0) for r in results) == len(eligible)
    assert sum(r.get("skipped:already_solicited", 0) for r in results) == 0
    posts = [c[1] for c in solicitation_calls(env) if c[0] == "POST"]
    assert sorted(posts) == sorted(eligible)
    assert {m.status for m in messages(env).values()} == {"sent"}


def kill_after_first_solicitation(env) -> str:
    """Plan and dispatch in a child process SIGKILLed right after Amazon accepted the first solicitation."""
    settings = json.loads(json.dumps({
        "database_url": env.database.url,
        "app": {"instance_path": str(env.config.instance_path)},
        "amazon": {"endpoint": env.sandbox.url, "lwa_token_url": env.sandbox.lwa_token_url},
        "secrets": {"secret_key": env.config.secrets.secret_key,
                    "encryption_key": env.config.secrets.encryption_key,
                    "lwa_client_id": env.config.secrets.lwa_client_id,
                    "lwa_client_secret": env.config.secrets.lwa_client_secret},
    }))
    args = json.dumps({"settings": settings, "now": env.clock.now().isoformat(), "store_id": env.store_id})
    before = set(ledger(env))
    proc = subprocess.run([sys.executable, "-m", "tests.amazon_kill_worker", args], cwd=ROOT, timeout=60,
                          capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert len(set(ledger(env)) - before) == 1
    (killed_order,) = set(ledger(env)) - before
    assert messages(env)[killed_order].status == "sending"
    return killed_order


def test_killed_after_the_call_before_the_commit_is_reconciled_not_resent(env):
    # An earlier run sent what was due then; today's first solicitation is an order whose window just opened, so
    # Amazon's window is certainly open when the crash is reconciled (see surely_open_until).
    yesterday = env.clock.now()
    sync_amazon_store(env.context(), env.store_id)
    solicit(env)
    todays: set[str] = set()
    while not todays:  # the next day a window opens (nothing else is due meanwhile)
        env.clock.set(env.clock.now() + DAY)
        sync_amazon_store(env.context(), env.store_id)
        eligible = expected_send_times(env, [yesterday, env.clock.now()])
        todays = {k for k, t in eligible.items() if t > yesterday}
    killed_order = kill_after_first_solicitation(env)
    assert killed_order in todays
    claimed_at = messages(env)[killed_order].claimed_at
    # A dispatcher right after the crash leaves the fresh claim alone (it may belong to a live one) ...
    first = dispatch(env)
    assert first.get("reconciled", 0) == 0 and messages(env)[killed_order].status == "sending"
    assert first["sent"] == len(todays) - 1
    # ... and once the claim is stale (15 minutes), the next one asks Amazon instead of sending again.
    env.clock.set(max(env.clock.now(), claimed_at + timedelta(minutes=16)))
    asked_from = len(env.recorder.calls)
    second = dispatch(env)
    assert (second["reconciled"], second["reconciled:sent"]) == (1, 1)
    assert [c[:2] for c in solicitation_calls_since(env, asked_from)] == [("GET", killed_order)]
    assert set(ledger(env)) == set(eligible)
    posts = [c[1] for c in solicitation_calls(env) if c[0] == "POST"]
    assert sorted(posts) == sorted(eligible)
    final = messages(env)
    assert final[killed_order].status == "sent" and final[killed_order].last_error.startswith("reconciled")
    assert final[killed_order].sent_at == claimed_at and final[killed_order].attempts == 1
    assert {m.status for m in final.values()} == {"sent"}


def test_killed_and_the_window_closed_before_reconciling_is_recorded_as_unknown_not_sent(env):
    sync_amazon_store(env.context(), env.store_id)
    killed_order = kill_after_first_solicitation(env)
    closes = window(env.sandbox.orders_by_id[killed_order])[1]
    env.clock.set(closes + timedelta(hours=1))  # nobody ran for weeks; the order's window closed meanwhile
    result = dispatch(env)
    row = messages(env)[killed_order]
    assert (row.status, row.skip_reason, row.sent_at) == ("skipped", "delivery_unknown", None)
    assert "window closed" in row.last_error and result["reconciled:skipped"] == 1
    assert [c[0] for c in solicitation_calls(env) if c[1] == killed_order] == ["GET", "POST", "GET"]


def shipped_at(order) -> datetime:
    """When the sandbox order shipped (its Shipped event)."""
    return next(when for when, status in order.timeline if status == "Shipped")


def test_no_longer_offered_once_the_window_may_have_closed_is_unknown_not_sent(env):
    """Amazon closes the window 30 days after the delivery, which can be before our latest delivery date + 30 days:
    past 30 days after shipping "no longer offered" proves nothing, so the row is not recorded as sent."""
    sync_amazon_store(env.context(), env.store_id)
    killed_order = kill_after_first_solicitation(env)
    order = env.sandbox.orders_by_id[killed_order]
    row = messages(env)[killed_order]
    reconcile_at = row.claimed_at + timedelta(minutes=16)
    # The oldest order due: its documented window is still open, but 30 days after shipping have passed.
    assert shipped_at(order) + timedelta(days=30) < reconcile_at < window(order)[1]
    env.clock.set(reconcile_at)
    result = dispatch(env)
    row = messages(env)[killed_order]
    assert (row.status, row.skip_reason, row.sent_at) == ("skipped", "delivery_unknown", None)
    assert "may have closed" in row.last_error and result["reconciled:skipped"] == 1
    assert [c[0] for c in solicitation_calls(env) if c[1] == killed_order] == ["GET", "POST", "GET"]


def test_a_claim_lost_before_the_hand_over_is_never_recorded_as_sent(env):
    """A dispatcher died after claiming, before the last check; Amazon stops offering the order for its own reason
    (cancelled there, not yet synced here). Nothing of ours reached Amazon: the row goes back to daily asking."""
    sync_amazon_store(env.context(), env.store_id)
    amazon_review_request.run(env.context(), env.store_id)
    with env.database.session() as session:
        claimed = outbox.claim_next(session, env.clock.now(), ["amazon_solicitation"])
        outbox.mark_claimed(claimed, "dead-dispatcher", env.clock.now())
        order_id = claimed.payload["amazon_order_id"]
    env.sandbox.cancel_order(order_id)
    env.clock.advance(minutes=16)
    result = dispatch(env)
    row = messages(env)[order_id]
    assert result["reconciled:scheduled"] == 1 and result.get("reconciled:sent", 0) == 0
    assert (row.status, row.skip_reason, row.sent_at) == ("scheduled", "not_offered", None)
    assert order_id not in ledger(env)
    assert [c[0] for c in solicitation_calls(env) if c[1] == order_id] == ["GET", "GET"]


def solicitation_calls_since(env, start: int) -> list[tuple[str, str, datetime]]:
    """Return the Solicitations requests the sandbox received after the first ``start`` calls."""
    return [(m, unquote(p.split("/")[4]), w) for m, p, _q, w in env.recorder.calls[start:]
            if p.startswith("/solicitations/v1/orders/")]


def test_a_claim_lost_before_any_call_is_still_offered_and_sent_once(env):
    sync_amazon_store(env.context(), env.store_id)
    amazon_review_request.run(env.context(), env.store_id)
    eligible = expected_send_times(env, [env.clock.now()])
    # A dispatcher commits its claim and dies before calling Amazon (the claim step the dispatcher runs).
    with env.database.session() as session:
        claimed = outbox.claim_next(session, env.clock.now(), ["amazon_solicitation"])
        outbox.mark_claimed(claimed, "dead-dispatcher", env.clock.now())
        order_id = claimed.payload["amazon_order_id"]
    env.clock.advance(minutes=16)
    result = dispatch(env)
    assert (result["reconciled"], result["reconciled:scheduled"], result["sent"]) == (1, 1, len(eligible))
    row = messages(env)[order_id]
    assert (row.status, row.attempts) == ("sent", 2)  # each claim counts
    assert [c[0] for c in solicitation_calls(env) if c[1] == order_id] == ["GET", "GET", "POST"]
    assert set(ledger(env)) == set(eligible)


def test_a_5xx_to_the_send_is_never_resent_blindly(env):
    sync_amazon_store(env.context(), env.store_id)
    eligible = sorted(expected_send_times(env, [env.clock.now()]))
    target = eligible[0]

    def answer_the_send_with_a_500(method, path):
        # Amazon answers the POST for this order with a 500 (it did not record it, but we cannot know).
        if path.startswith(f"/solicitations/v1/orders/{target}"):
            env.sandbox.set_faults(1.0 if method == "GET" else 0.0, kinds=["500"])

    env.recorder.after = answer_the_send_with_a_500
    first = solicit(env)
    env.recorder.after = None
    row = messages(env)[target]
    assert (row.status, first["unconfirmed"], first["sent"]) == ("sending", 1, len(eligible) - 1)
    assert row.last_error.startswith("unconfirmed: ServerError")
    assert [c[0] for c in solicitation_calls(env) if c[1] == target] == ["GET", "POST"]
    env.clock.advance(minutes=16)
    second = dispatch(env)
    assert (second["reconciled:scheduled"], second["sent"]) == (1, 1)
    assert [c[0] for c in solicitation_calls(env) if c[1] == target] == ["GET", "POST", "GET", "GET", "POST"]
    assert set(ledger(env)) == set(eligible) and messages(env)[target].status == "sent"


def test_a_throttled_run_hands_the_seller_back_without_using_attempts(env):
    sync_amazon_store(env.context(), env.store_id)
    eligible = sorted(expected_send_times(env, [env.clock.now()]))

    def throttle_everything_after_the_first_ask(method, path):
        if method == "GET" and path.startswith("/solicitations/"):
            env.sandbox.set_faults(1.0, kinds=["429"])

    env.recorder.after = throttle_everything_after_the_first_ask
    first = solicit(env)
    env.recorder.after = None
    env.sandbox.set_faults(0.0)
    assert not ledger(env)
    assert first == Counter({"deferred": len(eligible), "deferred:throttled": len(eligible)})
    rows = messages(env)
    assert {(m.status, m.skip_reason, m.attempts) for m in rows.values()} == {("scheduled", "throttled", 0)}
    # Only the first message reached Amazon; the seller's others waited without a call.
    calls = solicitation_calls(env)
    assert len({c[1] for c in calls}) == 1 and [c[0] for c in calls] == ["GET"] + ["POST"] * 6  # 6 = max_attempts
    env.clock.advance(minutes=1)
    second = dispatch(env)
    assert second["sent"] == len(eligible) and set(ledger(env)) == set(eligible)
    assert {(m.status, m.attempts) for m in messages(env).values()} == {("sent", 1)}


def test_a_revoked_seller_waits_an_hour_and_nothing_is_lost(env):
    sync_amazon_store(env.context(), env.store_id)
    eligible = sorted(expected_send_times(env, [env.clock.now()]))
    for token, (_app, seller_id) in list(env.sandbox.lwa.refresh_tokens.items()):
        if seller_id == env.seller.seller_id:
            env.sandbox.lwa.revoke(token)  # the seller removed the app in Seller Central
    started = env.clock.now()
    result = solicit(env)
    assert result == Counter({"deferred": len(eligible), "deferred:amazon_not_authorized": len(eligible)})
    # The sync's access token is still stored: one actions check tries it (403, revoked), then LWA refuses the
    # refresh token; nothing is posted and the seller's other messages make no call at all.
    assert [c[0] for c in solicitation_calls(env)] == ["GET"]
    rows = messages(env).values()
    assert {(m.status, m.skip_reason, m.attempts) for m in rows} == {("scheduled", "amazon_not_authorized", 0)}
    # An hour from the refusal (the refused token's retry moved the clock by its one-second backoff).
    (retry_at,) = {m.scheduled_for for m in rows}
    assert started + timedelta(hours=1) <= retry_at <= started + timedelta(hours=1, seconds=5)
