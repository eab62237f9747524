"""`GET /metrics`: off by default, 401 without the token, and exact figures after a known sequence of webhooks,
sends, skips, job runs and marketplace calls — all read from the database, so any worker answers the same."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from base.clock import FrozenClock
from jobs.runner import run_job
from jobs.schedule import JobSpec, acquire_lease, run_named
from plugin import create_app
from plugin.config import ConfigError
from plugin.context import JobContext
from plugin.models import Message, Store, Suppression
from sandbox.smtp import SmtpSandbox
from tests.conftest import make_settings, wipe
from tests.messaging import seed
from tests.messaging.conftest import IN_WINDOW
from tests.shopify_app_env import body_of, signed_headers

TOKEN = "metrics-token-0123456789abcdef"  # noqa: S105 - a test value


def _app(database_url: str, tmp_path: Path, clock: FrozenClock, **extra: object):
    return create_app(make_settings(database_url, tmp_path / "instance", **extra), clock=clock)


@pytest.fixture
def metrics_app(database_url: str, tmp_path: Path, clock: FrozenClock) -> Iterator:
    """Return an app with metrics enabled and a token; committed rows are wiped afterwards."""
    app = _app(database_url, tmp_path, clock, metrics={"enabled": True}, secrets={"metrics_token": TOKEN})
    yield app
    wipe(app.extensions["aftercare.db"].engine)
    app.extensions["aftercare.db"].dispose()


def scrape(client) -> dict[tuple[str, frozenset], float]:
    """Return every sample of an authorised scrape as {(name, labels): value}."""
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(answer.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def series(samples: dict, name: str) -> dict[frozenset, float]:
    """Return the samples of one metric name, keyed by their labels."""
    return {labels: value for (n, labels), value in samples.items() if n == name}


def labels(**values: str) -> frozenset:
    """Return a label set as scrape() keys it."""
    return frozenset(values.items())


def test_metrics_are_off_by_default(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    app = _app(database_url, tmp_path, clock)
    try:
        assert app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    finally:
        app.extensions["aftercare.db"].dispose()


def test_enabled_without_a_token_the_app_does_not_start(database_url: str, tmp_path: Path, clock) -> None:
    expected = r"^AFTERCARE_METRICS_TOKEN is not set \(required when metrics.enabled is true\)$"
    with pytest.raises(ConfigError, match=expected):
        _app(database_url, tmp_path, clock, metrics={"enabled": True})


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "])
def test_a_missing_or_wrong_token_is_401(metrics_app, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    answer = metrics_app.test_client().get("/metrics", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert "aftercare_" not in answer.get_data(as_text=True)


def _post_webhook(client, topic: str, body: bytes, webhook_id: str) -> None:
    answer = client.post("/webhooks", data=body, headers=signed_headers(body, topic, shop=seed.SHOP,
                                                                         webhook_id=webhook_id))
    assert answer.status_code == 200, answer.get_data(as_text=True)


def test_exact_figures_after_webhooks_sends_skips_and_jobs(metrics_app, clock: FrozenClock) -> None:
    client = metrics_app.test_client()
    with SmtpSandbox() as smtp:
        ctx = JobContext.from_app(metrics_app, sleep=lambda _s: None,
                                  extras={"smtp_url": f"smtp://127.0.0.1:{smtp.port}",
                                          "base_url": "https://aftercare.test"})
        with ctx.database.session() as s:
            store = seed.store(s)
            broken = Store(merchant_id=store.merchant_id, platform="shopify", external_id="broken.myshopify.com",
                           name="Broken", marketplace_ids=[])
            s.add(broken)
            c = [seed.customer(s, store, n) for n in range(1, 7)]
            c[1].marketing_consent = False
            s.add(Suppression(store_id=store.id, email=c[2].email, reason="unsubscribe"))
            s.flush()
            store_id = store.id

        # Webhooks: one processed by the webhooks job, one refused as unreadable (failed), two left waiting.
        clock.set(IN_WINDOW - timedelta(minutes=30))
        _post_webhook(client, "products/delete", body_of({"id": 990001}), "wh-a")
        clock.set(IN_WINDOW - timedelta(minutes=25))
        assert run_named(ctx, "webhooks").results[None]["processed"] == 1
        clock.set(IN_WINDOW - timedelta(minutes=20))
        _post_webhook(client, "orders/create", body_of({"id": 4501, "name": "#1001"}), "wh-b")
        clock.set(IN_WINDOW - timedelta(minutes=10))
        _post_webhook(client, "orders/updated", b"[1, 2]", "wh-c")
        clock.set(IN_WINDOW - timedelta(minutes=5))
        _post_webhook(client, "customers/update", body_of({"id": 77}), "wh-d")

        # The outbox: three due, one due tomorrow, one skipped by its flow, one failed, one being sent.
        clock.set(IN_WINDOW)
        with ctx.database.session() as s:
            store = s.get(Store, store_id)
            seed.message(s, store, c[0], flow="review_request", when=IN_WINDOW)
            seed.message(s, store, c[1], flow="replenishment", when=IN_WINDOW, marketing=True)
            seed.message(s, store, c[2], flow="review_request", when=IN_WINDOW - timedelta(hours=1))
            seed.message(s, store, c[0], flow="survey", when=IN_WINDOW + timedelta(days=1))
            seed.message(s, store, c[3], flow="survey", when=IN_WINDOW, status="skipped", skip_reason="holdout")
            seed.message(s, store, c[4], flow="survey", when=IN_WINDOW - timedelta(days=2), status="failed")
            sending = seed.message(s, store, c[5], flow="review_request", when=IN_WINDOW)
            s.execute(update(Message).where(Message.id == sending.id)
                      .values(status="sending", claimed_by="other-dispatcher", claimed_at=IN_WINDOW, attempts=1))
        acquire_lease(ctx.database, "sched-host:77:beef", IN_WINDOW - timedelta(seconds=10), 60)

        before = scrape(client)
        assert before[("aftercare_outbox_due", frozenset())] == 3
        assert series(before, "aftercare_messages_sent_total") == {}

        assert run_named(ctx, "dispatch").results == {
            None: {"sent": 1, "skipped": 2, "skipped:no_consent": 1, "skipped:suppressed": 1}}
        assert len(smtp.messages) == 1
        probe = JobSpec("probe", "tests.jobs.jobfns:mark_store", 60)
        assert run_job(ctx, probe).failures.keys() == {broken.id}

    after = scrape(client)
    assert after[("aftercare_webhooks_waiting", frozenset())] == 2
    assert after[("aftercare_webhooks_oldest_waiting_age_seconds", frozenset())] == 20 * 60
    assert after[("aftercare_webhooks_failed", frozenset())] == 1
    assert after[("aftercare_outbox_due", frozenset())] == 0
    assert after[("aftercare_outbox_sending", frozenset())] == 1
    assert after[("aftercare_outbox_failed", frozenset())] == 1
    assert series(after, "aftercare_messages_sent_total") == {labels(flow="review_request", channel="email"): 1}
    assert series(after, "aftercare_messages_skipped_total") == {
        labels(flow="replenishment", reason="no_consent"): 1,
        labels(flow="review_request", reason="suppressed"): 1,
        labels(flow="survey", reason="holdout"): 1,
    }
    assert series(after, "aftercare_messages_cancelled_total") == {}
    assert series(after, "aftercare_scheduler_lease_holder") == {labels(holder="sched-host:77:beef"): 1}
    assert after[("aftercare_scheduler_lease_held", frozenset())] == 1
    assert after[("aftercare_scheduler_lease_expires_in_seconds", frozenset())] == 50
    assert series(after, "aftercare_job_runs_total") == {
        labels(job="webhooks", outcome="ok"): 1, labels(job="dispatch", outcome="ok"): 1,
        labels(job="probe", outcome="failed"): 1}
    assert series(after, "aftercare_job_store_failures_total") == {
        labels(job="webhooks"): 0, labels(job="dispatch"): 0, labels(job="probe"): 1}
    for job in ("webhooks", "dispatch", "probe"):
        assert after[("aftercare_job_duration_seconds_count", labels(job=job))] == 1
        buckets = {dict(k)["le"]: v for k, v in series(after, "aftercare_job_duration_seconds_bucket").items()
                   if dict(k)["job"] == job}
        assert len(buckets) == 10 and buckets["+Inf"] == 1
        ordered = sorted(buckets.items(), key=lambda item: float(item[0]))
        assert [v for _le, v in ordered] == sorted(v for _le, v in ordered)  # cumulative
        assert 0 <= after[("aftercare_job_duration_seconds_sum", labels(job=job))] <= 60

    # Past its expiry nobody holds the lease: no holder series, held 0.
    clock.advance(seconds=51)
    later = scrape(client)
    assert series(later, "aftercare_scheduler_lease_holder") == {}
    assert later[("aftercare_scheduler_lease_held", frozenset())] == 0
