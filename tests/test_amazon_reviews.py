"""Amazon solicitations: the window at its boundaries, once per order, no gating, overlap and kill safety."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from jobs import amazon_reviews, amazon_sync
from plugin.models import Message, Order, Review
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


def daily(env, days: int, new_orders_per_day: int = 0) -> list[datetime]:
    """Run sync then solicitations once a day for ``days`` days (new orders arriving); return the run times."""
    times = []
    start = env.clock.now()
    for k in range(days):
        env.clock.set(start + k * DAY)
        for n in range(new_orders_per_day):
            marketplaces = env.seller.marketplace_ids
            env.sandbox.add_order(env.seller.seller_id, marketplaces[(k + n) % len(marketplaces)],
                                  purchase_date=env.clock.now() - timedelta(hours=3 + n))
        times.append(env.clock.now())
        amazon_sync.run(env.context(), env.store_id)
        amazon_reviews.run(env.context(), env.store_id)
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
        rows = session.scalars(select(Message).where(Message.flow == amazon_reviews.FLOW)).all()
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
    amazon_sync.run(env.context(), env.store_id)
    eligible = expected_send_times(env, [env.clock.now()])
    victim = sorted(eligible)[0]
    env.sandbox.cancel_order(victim)
    env.clock.advance(minutes=5)
    amazon_sync.run(env.context(), env.store_id)
    amazon_reviews.run(env.context(), env.store_id)
    assert set(ledger(env)) == set(eligible) - {victim}
    assert victim not in messages(env)


def test_returned_and_refunded_orders_are_left_out_but_nothing_else(env):
    amazon_sync.run(env.context(), env.store_id)
    eligible = sorted(expected_send_times(env, [env.clock.now()]))
    afn = next(o for o in eligible if env.sandbox.orders_by_id[o].fulfillment_channel == "AFN")
    mfn = next(o for o in eligible if env.sandbox.orders_by_id[o].fulfillment_channel == "MFN")
    env.sandbox.add_return(afn, refund=False)
    env.sandbox.add_return(mfn, refund=True)
    env.clock.advance(minutes=5)
    amazon_sync.run(env.context(), env.store_id, full=True)  # full: returns reports are due again
    with env.database.session() as session:
        flags = {o.external_id: (o.returned, o.refunded) for o in session.scalars(
            select(Order).where(Order.external_id.in_([afn, mfn])))}
    assert flags == {afn: (True, False), mfn: (True, True)}
    amazon_reviews.run(env.context(), env.store_id)
    assert set(ledger(env)) == set(expected_send_times(env, [env.clock.now()]))
    assert afn not in ledger(env) and mfn not in ledger(env)
    # A later re-read of the orders (Amazon knows nothing of returns there) keeps the flags.
    env.clock.advance(hours=1)
    amazon_sync.run(env.context(), env.store_id, full=True)
    with env.database.session() as session:
        assert session.scalar(select(Order.returned).where(Order.external_id == afn)) is True


def test_an_open_one_star_ticket_does_not_stop_the_solicitation(env):
    amazon_sync.run(env.context(), env.store_id)
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
    result = amazon_reviews.run(env.context(), env.store_id)
    assert unhappy in ledger(env)
    assert messages(env)[unhappy].status == "sent"
    assert result["sent"] == len(eligible)


def test_delay_setting_moves_the_first_day(env, database):
    from plugin import flow_settings

    with env.database.session() as session:
        flow_settings.update(session, env.config, env.store_id, amazon_reviews.FLOW,
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
    amazon_sync.run(env.context(), env.store_id)
    eligible = sorted(expected_send_times(env, [env.clock.now()]))
    from sandbox.amazon.solicitations import SolicitationRecord

    # The seller already asked from Seller Central: Amazon stops offering the action for that order.
    order = env.sandbox.orders_by_id[eligible[0]]
    env.sandbox.solicitations.add(SolicitationRecord(order.order_id, order.marketplace_id, env.seller.seller_id,
                                                     env.clock.now()))
    started = env.clock.now()
    result = amazon_reviews.run(env.context(), env.store_id)
    row = messages(env)[eligible[0]]
    assert row.status == "scheduled" and started + DAY <= row.scheduled_for < started + DAY + timedelta(minutes=5)
    assert result["sent"] == len(eligible) - 1 and result["not_offered"] == 1
    assert [c for c in solicitation_calls(env) if c[0] == "POST" and c[1] == eligible[0]] == []


def test_a_403_not_available_is_recorded_as_already_solicited_and_never_retried(env):
    amazon_sync.run(env.context(), env.store_id)
    eligible = sorted(expected_send_times(env, [env.clock.now()]))
    from sandbox.amazon.solicitations import SolicitationRecord

    target = env.sandbox.orders_by_id[eligible[0]]

    def seller_clicks_request_a_review(method, path):
        # Between our actions check and our send, the seller uses Seller Central's button.
        if method == "GET" and path.endswith("/" + target.order_id):
            env.sandbox.solicitations.add(SolicitationRecord(target.order_id, target.marketplace_id,
                                                             env.seller.seller_id, env.clock.now()))

    env.recorder.after = seller_clicks_request_a_review
    result = amazon_reviews.run(env.context(), env.store_id)
    env.recorder.after = None
    row = messages(env)[target.order_id]
    assert (row.status, row.skip_reason) == ("skipped", amazon_reviews.ALREADY_SOLICITED)
    assert "not available" in row.last_error
    assert result["already_solicited"] == 1 and result["sent"] == len(eligible) - 1
    first_run = env.clock.now()
    env.clock.advance(days=1)
    amazon_sync.run(env.context(), env.store_id)
    amazon_reviews.run(env.context(), env.store_id)
    calls = [c for c in solicitation_calls(env) if c[1] == target.order_id]
    assert [c[0] for c in calls] == ["GET", "POST"]  # never asked or sent again
    assert set(ledger(env)) == set(expected_send_times(env, [first_run, env.clock.now()]))


@pytest.mark.parametrize("runs", [2, 3])
def test_overlapping_runs_send_exactly_once(env, runs):
    amazon_sync.run(env.context(), env.store_id)
    eligible = expected_send_times(env, [env.clock.now()])
    barrier = threading.Barrier(runs)
    results, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=10)
            results.append(amazon_reviews.run(env.context(), env.store_id))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    # Overlapping runs share Amazon's rate limit, so one of them may hand a row back ("deferred") for the
    # next run; what must never happen is a second solicitation. The next run finishes the deferred rows.
    results.append(amazon_reviews.run(env.context(), env.store_id))
    assert set(ledger(env)) == set(eligible)
    assert sum(r.get("sent", 0) for r in results) == len(eligible)
    assert sum(r.get("already_solicited", 0) for r in results) == 0
    posts = [c[1] for c in solicitation_calls(env) if c[0] == "POST"]
    assert sorted(posts) == sorted(eligible)
    assert {m.status for m in messages(env).values()} == {"sent"}


def test_killed_after_the_call_before_the_commit_is_reconciled_not_resent(env):
    amazon_sync.run(env.context(), env.store_id)
    eligible = expected_send_times(env, [env.clock.now()])
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
    proc = subprocess.run([sys.executable, "-m", "tests.amazon_kill_worker", args], cwd=ROOT, timeout=60,
                          capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert len(ledger(env)) == 1
    (killed_order,) = ledger(env)
    assert messages(env)[killed_order].status == "sending"
    # A run right after the crash leaves the fresh claim alone (it may belong to a live run) ...
    first = amazon_reviews.run(env.context(), env.store_id)
    assert first.get("reconciled", 0) == 0 and messages(env)[killed_order].status == "sending"
    # ... the e-mail dispatcher's own crash recovery leaves Amazon rows alone (it would resend) ...
    env.clock.advance(minutes=20)
    from jobs.dispatch import dispatch_due

    dispatch_due(env.context())
    assert messages(env)[killed_order].status == "sending"
    # ... and once the claim is stale, the next run asks Amazon instead of sending again.
    second = amazon_reviews.run(env.context(), env.store_id)
    assert second["reconciled"] == 1
    assert set(ledger(env)) == set(eligible)
    posts = [c[1] for c in solicitation_calls(env) if c[0] == "POST"]
    assert sorted(posts) == sorted(eligible)
    final = messages(env)
    assert final[killed_order].status == "sent" and final[killed_order].last_error.startswith("reconciled")
    assert {m.status for m in final.values()} == {"sent"}
