"""`aftercare demo` end to end on a small store: install, backfill, simulated days, admin figures, reuse, Ctrl-C.

The first run happens in-process (so the test can read the sandboxes' own records); the second run and the
Ctrl-C run are the real command in a subprocess on the same instance folder.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from demo import Demo, DemoOptions
from plugin.auth.tokens import get_access_token
from plugin.models import Store
from sandbox.shopify import mint_session_token
from tests.processes import AFTERCARE, like_a_terminal

ROOT = Path(__file__).resolve().parents[2]
SIZES = {"customers": 100, "orders": 400, "amazon_orders": 120, "days": 45}
CLI_SIZES = ["--customers", "100", "--orders", "400", "--amazon-orders", "120", "--days", "45"]
# A pinned end makes the simulated period (and so every count below) the same on every run.
END = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
EMAIL_FLOWS = {"review_request", "review_reply", "survey", "replenishment", "amazon_review_request", "first_order",
               "cancellation", "ticket_followup", "usage_guide", "winback", "birthday", "vip",
               "shopping_calendar"}


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return an empty instance folder shared by the runs of this module."""
    return tmp_path_factory.mktemp("demo-instance")


@pytest.fixture(scope="module")
def first_run(instance: Path):
    """Run the demo once in-process (nothing served afterwards but the threads), yield it, then stop it."""
    lines: list[str] = []
    demo = Demo(DemoOptions(instance=instance, port=0, echo=lines.append, end=END, **SIZES))
    try:
        result = demo.start()
        yield demo, result, lines
    finally:
        demo.stop()


def rows(instance: Path, sql: str, **params: object) -> list[tuple]:
    """Run a read-only query on the demo database (a separate engine: what is committed is what counts)."""
    engine = create_engine(f"sqlite:///{instance / 'demo.sqlite'}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def test_first_run_installs_backfills_and_fires_every_flow(first_run, instance):
    demo, result, lines = first_run
    assert not result.reused
    assert any(line.startswith("[4/6] Simulating: day") and "%" in line for line in lines)

    # Installed through token exchange: the offline token is stored encrypted and works against the sandbox.
    ((status, raw, installed_at),) = rows(instance, "SELECT status, access_token_enc, installed_at FROM store "
                                                    "WHERE id = :id", id=result.shopify_store_id)
    assert status == "active" and installed_at is not None
    stored = demo.app.extensions["aftercare.vault"].decrypt(raw)
    assert stored.encode() not in raw
    # The clock is live now (later than the pinned end): the app refreshes the expiring token as it would.
    with demo.live_ctx.database.session() as session:
        token = get_access_token(session, session.get(Store, result.shopify_store_id), demo.live_ctx)
    answer = requests.post(f"{demo.shopify_url}/admin/api/2025-01/graphql.json", timeout=30,
                           json={"query": "{ shop { name } }"},
                           headers={"Host": demo.shop, "X-Shopify-Access-Token": token})
    assert answer.status_code == 200 and answer.json()["data"]["shop"]["name"], answer.text

    # Every order of the sandbox store (all visible: the store only grew with the clock) is in the database.
    sandbox_ids = {str(o.id) for o in demo.shopify.store.orders}
    db_ids = {r[0].rsplit("/", 1)[-1] for r in rows(instance, "SELECT external_id FROM orders WHERE store_id = :s",
                                                     s=result.shopify_store_id)}
    assert db_ids == sandbox_ids

    sent = dict(rows(instance, "SELECT flow, count(*) FROM message WHERE status = 'sent' GROUP BY flow"))
    assert EMAIL_FLOWS <= set(sent), sent
    # The summary line counts the service journey's emails as the database holds them.
    by_step = dict(((f, s), n) for f, s, n in rows(
        instance, "SELECT flow, step, count(*) FROM message WHERE status = 'sent' GROUP BY flow, step"))
    [summary] = [line for line in lines if line.startswith("[5/6] Simulated")]
    for (flow, step), label in {("first_order", "main"): "welcomes", ("cancellation", "ask"): "cancellation questions",
                                ("cancellation", "declined"): "declined notices",
                                ("ticket_followup", "followup"): "follow-ups",
                                ("usage_guide", "main"): "usage guides"}.items():
        assert by_step.get((flow, step), 0) >= 1, (flow, step)
        assert f"{by_step[(flow, step)]:,} {label}" in summary
    # ... and the growth journey's: win-backs (the paced backfill on), birthdays (from the metafield), VIP welcomes,
    # the shopping calendar's autumn events (Diwali, Singles' Day, Shichi-Go-San in the pinned 45 days).
    for (flow, step), label in {("winback", "main"): "win-backs", ("winback", "reminder"): "win-back reminders",
                                ("birthday", "main"): "birthday emails", ("vip", "main"): "VIP welcomes",
                                ("shopping_calendar", "main"): "shopping-calendar emails"}.items():
        assert by_step.get((flow, step), 0) >= 1, (flow, step)
        assert f"{by_step[(flow, step)]:,} {label}" in summary
    # Every VIP member the app says it tagged carries the tag in Shopify (tags match case-insensitively, and the
    # seed already tags its big spenders "vip"); everyone carrying the app's own "VIP" was tagged by it.
    tagged = {r[0].rsplit("/", 1)[-1] for r in rows(
        instance, "SELECT c.external_id FROM vip_member v JOIN customer c ON c.id = v.customer_id WHERE v.tagged")}
    customers = demo.shopify.store.customers
    assert tagged and tagged <= {str(c.id) for c in customers if "vip" in {t.lower() for t in c.tags}}
    assert {str(c.id) for c in customers if "VIP" in c.tags} <= tagged
    assert f"{len(tagged):,} VIP tags" in summary
    (answered,) = rows(instance, "SELECT count(*) FROM cancellation_answer")
    assert answered[0] >= 1
    # The Amazon sandbox's own record of solicitations equals what the app says it sent.
    ledger = {r.order_id for r in demo.amazon.solicitations.records}
    app_sent = {r[0] for r in rows(instance, "SELECT o.external_id FROM message m JOIN orders o ON o.id = m.order_id "
                                             "WHERE m.flow = 'amazon_review_request' AND m.status = 'sent'")}
    assert ledger and ledger == app_sent
    # Emails reached the SMTP sandbox and its outbox folder.
    ((emails,),) = rows(instance, "SELECT count(*) FROM message WHERE status = 'sent' AND channel = 'email'")
    assert len(list((instance / "demo-outbox").glob("*.eml"))) == len(demo.smtp.messages) == emails

    # Carrier timelines produced delivery updates, and the summary line names how many (the database's count).
    assert sent.get("delivery_update", 0) >= 1, sent
    (summary,) = [line for line in lines if line.startswith("[5/6] Simulated")]
    assert f"{sent['delivery_update']:,} delivery updates" in summary, summary
    # The stalled and lost timelines were detected and opened tickets; the line names both counts as stored.
    ((stalls, stall_tickets),) = rows(instance, "SELECT count(*), count(t.id) FROM delivery_problem d "
                                                "LEFT JOIN ticket t ON t.id = d.ticket_id")
    assert stalls >= 1 and stall_tickets >= 1, (stalls, stall_tickets)
    assert f"{stalls:,} delivery stalls" in summary and f"{stall_tickets:,} stall tickets" in summary, summary

    (detractors,) = rows(instance, "SELECT count(*) FROM ticket WHERE source = 'survey'")
    assert detractors[0] >= 1
    # Since the replenishment model of issue 16 the demo's 90 days hold no reminder cancelled by a reorder (why is
    # not yet known: see the closing note of issue 16); the rule is asserted with exact rows in
    # tests/jobs/test_replenishment.py and must occur in the 120-day simulation (tests/jobs/test_simulation.py).
    (clicked,) = rows(instance, "SELECT count(*) FROM message WHERE clicked_at IS NOT NULL")
    assert clicked[0] >= 1


def _repurchase(instance: Path, store_ids: list[int], now) -> tuple[int, int]:
    """Plain-Python 90-day repurchase: first-time buyers of the year before now-90d, and who came back."""
    orders = [r for r in rows(instance, "SELECT store_id, customer_id, created_at_remote FROM orders "
                                        "WHERE customer_id IS NOT NULL AND cancelled_at IS NULL")
              if r[0] in set(store_ids)]
    by_customer: dict[tuple[int, int], list] = {}
    for store_id, customer_id, created in orders:
        stamp = datetime.fromisoformat(created) if isinstance(created, str) else created
        by_customer.setdefault((store_id, customer_id), []).append(stamp.replace(tzinfo=None))
    naive_now = now.replace(tzinfo=None)
    eligible = repeaters = 0
    for stamps in by_customer.values():
        stamps.sort()
        first = stamps[0]
        if not (naive_now - timedelta(days=455) < first <= naive_now - timedelta(days=90)):
            continue
        eligible += 1
        repeaters += any(first < s <= first + timedelta(days=90) for s in stamps[1:])
    return repeaters, eligible


def test_embedded_overview_shows_figures_computed_from_the_rows(first_run, instance):
    demo, result, _lines = first_run
    token = mint_session_token(demo.shop, demo.client_id, demo.config.secrets.shopify_api_secret, demo.clock.now())
    page = requests.get(f"{result.app_url}/admin/", params={"shop": demo.shop, "id_token": token}, timeout=30)
    assert page.status_code == 200, page.text[:300]
    stores = [r[0] for r in rows(instance, "SELECT id FROM store WHERE merchant_id = "
                                           "(SELECT merchant_id FROM store WHERE id = :s)", s=result.shopify_store_id)]
    assert sorted(stores) == sorted([result.shopify_store_id, result.amazon_store_id])
    # The page adds up each store's counts as of that store's last count (the demo's final metrics snapshot).
    counted = {sid: datetime.fromisoformat(str(at)) for sid, at in rows(
        instance, "SELECT store_id, computed_at FROM store_metrics")}
    assert set(stores) <= set(counted)
    per_store = [_repurchase(instance, [sid], counted[sid]) for sid in stores]
    expected = (sum(r for r, _ in per_store), sum(e for _, e in per_store))
    shown = re.search(r"(\d+) of (\d+) first-time customers ordered again within 90 days", page.text)
    assert shown, page.text[:2000]
    assert (int(shown.group(1)), int(shown.group(2))) == expected
    assert f"figures as of {min(counted[s] for s in stores):%b %d, %Y %H:%M} UTC" in page.text
    repeaters, eligible = int(shown.group(1)), int(shown.group(2))
    assert eligible > 0
    assert f"{100 * repeaters / eligible:.1f}" in page.text or f"{round(100 * repeaters / eligible)}" in page.text

    frame = requests.get(result.embedded_url, timeout=30)
    assert frame.status_code == 200 and "<iframe" in frame.text and "id_token=" in frame.text
    outbox = requests.get(result.outbox_url, timeout=30)
    assert outbox.status_code == 200 and "Demo outbox" in outbox.text
    first = re.search(r'<a href="([^"]+\.eml)">([^<]*)</a>', outbox.text)
    assert first, outbox.text[:1000]
    email = requests.get(result.outbox_url + first.group(1), timeout=30)
    assert email.status_code == 200 and "<iframe sandbox" in email.text and first.group(2) in email.text
    # The standalone login works with the demo credentials the command prints.
    browser = requests.Session()
    form = browser.get(result.login_url, timeout=30)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert form.status_code == 200 and csrf, form.text[:500]
    signed_in = browser.post(result.login_url, timeout=30, allow_redirects=False,
                             data={"csrf_token": csrf.group(1), "email": result.login_email,
                                   "password": result.login_password})
    assert signed_in.status_code == 303, signed_in.text[:500]
    standalone = browser.get(f"{result.app_url}/admin/", timeout=30)
    assert standalone.status_code == 200 and shown.group(0) in standalone.text


def _cli(instance: Path, *args: str) -> list[str]:
    return [*AFTERCARE, "demo", "--instance", str(instance),
            *CLI_SIZES, *args]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AFTERCARE_")}


def test_second_run_reuses_the_data_and_sends_nothing(first_run, instance):
    demo, _result, _lines = first_run
    demo.stop()  # the first run's servers go away, as when the command exits
    counts_before = rows(instance, "SELECT status, count(*) FROM message GROUP BY status ORDER BY status")
    orders_before = rows(instance, "SELECT count(*) FROM orders")
    started = time.perf_counter()
    done = subprocess.run(_cli(instance, "--no-serve", "--port", "0"), cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Reusing the demo data" in done.stdout and "data reused" in done.stdout
    assert time.perf_counter() - started < 30
    assert rows(instance, "SELECT status, count(*) FROM message GROUP BY status ORDER BY status") == counts_before
    assert rows(instance, "SELECT count(*) FROM orders") == orders_before


def test_ctrl_c_stops_cleanly(first_run, instance):
    process = subprocess.Popen(_cli(instance, "--port", "0"), cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                               preexec_fn=like_a_terminal,
                               stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        deadline = time.monotonic() + 60
        for line in process.stdout:  # type: ignore[union-attr]
            seen.append(line)
            if "Press Ctrl-C" in line or time.monotonic() > deadline:
                break
        assert any("Embedded admin" in line for line in seen), "".join(seen)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-2000:]
    assert "Traceback" not in err


def test_outbox_viewer_is_not_part_of_the_product(app):
    assert not any(rule.rule.startswith("/demo") for rule in app.url_map.iter_rules())
