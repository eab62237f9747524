"""The flow runner's preamble, holdout groups, schema validation, resend of skips, and `aftercare flows list`."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import math
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from aftercare.cli import main
from plugin import create_app, flow_settings
from plugin.config import ConfigError, load_config
from plugin.flow_schemas import SCHEMAS
from plugin.flows import FLOWS, get_flow, runner
from plugin.flows.holdout import is_held_out
from plugin.flows.resend import can_resend, cause_remains
from plugin.messaging.suppression import suppress
from plugin.models import Customer, Message, Store, Suppression
from tests.conftest import test_settings
from tests.jobs import factory as f

DAY = timedelta(days=1)
ROOT = Path(__file__).resolve().parents[2]


def _due_order(s, store_id, now, email=""):
    c = f.customer(s, store_id, email=email)
    return f.order(s, store_id, c.id, now - 20 * DAY, delivered_at=now - 7 * DAY)


def _count(ctx):
    with ctx.database.session() as s:
        return len(s.scalars(select(Message.id)).all())


# -- the preamble -------------------------------------------------------------------------------------------

def test_disabled_flow_writes_nothing(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        _due_order(s, st.id, now)
        flow_settings.update(s, ctx.config, st.id, "review_request", {"enabled": False},
                             get_flow("review_request").settings)
        sid = st.id
    assert runner.run_review_request(ctx, sid) == {"disabled": 1}
    assert _count(ctx) == 0


def test_uninstalled_store_writes_nothing(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s, uninstalled_at=now - DAY)
        _due_order(s, st.id, now)
        sid = st.id
    for run in (runner.run_review_request, runner.run_survey, runner.run_replenishment, runner.run_ticket_alert):
        assert run(ctx, sid) == {"inactive": 1}
    assert _count(ctx) == 0


def test_store_on_another_platform_writes_nothing(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s, platform="amazon")
        _due_order(s, st.id, now)
        sid = st.id
    assert runner.run_review_request(ctx, sid) == {"inactive": 1}
    assert runner.run_survey(ctx, sid) == {"inactive": 1}
    assert _count(ctx) == 0


def test_unknown_store_and_flow(ctx):
    assert runner.run_review_request(ctx, 999_999) == {"inactive": 1}
    with pytest.raises(LookupError, match="no flow named 'anniversary'"):
        get_flow("anniversary")


# -- holdout ------------------------------------------------------------------------------------------------

def _bucket(store_id, customer_id, flow):
    # The documented rule, recomputed here: the first 8 bytes of sha256("store:customer:flow") mod 10,000.
    digest = hashlib.sha256(f"{store_id}:{customer_id}:{flow}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def test_holdout_is_deterministic_and_near_its_share():
    n, percent = 2000, 10
    held = {c for c in range(1, n + 1) if is_held_out(7, c, "review_request", percent)}
    assert held == {c for c in range(1, n + 1) if is_held_out(7, c, "review_request", percent)}  # rerun
    assert held == {c for c in range(1, n + 1) if _bucket(7, c, "review_request") < 1000}
    sd = math.sqrt(n * 0.1 * 0.9)
    assert abs(len(held) - 200) <= 4 * sd  # 4 standard deviations of Binomial(2000, 0.1): 146..254
    # Another flow (or store) draws another group; 0 % holds out nobody.
    assert held != {c for c in range(1, n + 1) if is_held_out(7, c, "survey", percent)}
    assert not any(is_held_out(7, c, "review_request", 0) for c in range(1, n + 1))


def test_runner_writes_held_out_rows_as_skipped_holdout(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        customers = [f.customer(s, st.id) for _ in range(40)]
        orders = [f.order(s, st.id, c.id, now - 20 * DAY, delivered_at=now - 10 * DAY) for c in customers]
        flow_settings.update(s, ctx.config, st.id, "survey", {"holdout_percent": 50}, get_flow("survey").settings)
        sid = st.id
        expected = {o.id for o in orders if _bucket(sid, o.customer_id, "survey") < 5000}
    counts = runner.run_survey(ctx, sid)
    assert counts == {"surveys": 40 - len(expected), "skipped": len(expected)}
    with ctx.database.session() as s:
        rows = {m.order_id: (m.status, m.skip_reason) for m in s.scalars(select(Message))}
    assert {o for o, v in rows.items() if v == ("skipped", "holdout")} == expected
    assert {o for o, v in rows.items() if v == ("scheduled", None)} == {o.id for o in orders} - expected
    assert runner.run_survey(ctx, sid) == {"surveys": 0, "skipped": 0}


def test_review_requests_hold_nobody_out():
    """Every eligible customer is asked: a review_request flow cannot even declare a holdout (DESIGN §1)."""
    assert get_flow("review_request").settings.get("holdout_percent") is None
    assert get_flow("amazon_review_request").settings.get("holdout_percent") is None
    with pytest.raises(ValueError, match="may not hold customers out"):
        dataclasses.replace(get_flow("review_request"), settings=get_flow("survey").settings)


# -- typed settings -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("flow", "changes", "message"), [
    ("survey", {"holdout_percent": 60}, "Hold out this share of eligible customers (%) must be a whole "
                                        "number from 0 to 50."),
    ("survey", {"holdout_percent": 2.5}, "Hold out this share of eligible customers (%) must be a whole "
                                         "number from 0 to 50."),
    ("review_request", {"holdout_percent": 10}, "unknown setting 'flows.review_request.holdout_percent'"),
    ("review_request", {"delay_days": -1}, "Days after delivery must be a number from 0 to 365."),
    ("review_request", {"reminder_enabled": "yes"}, "Send one reminder must be on or off."),
    ("survey", {"kind": "ces"}, "Survey kind must be nps or csat"),
    ("replenishment", {"discount_percent": 0}, "Discount (%) must be a whole number from 1 to 100."),
    ("review_request", {"delay": 3}, "unknown setting 'flows.review_request.delay'"),
])
def test_schema_refuses_with_its_message(ctx, flow, changes, message):
    with ctx.database.session() as s:
        st = f.store(s)
        with pytest.raises(ConfigError) as refused:
            flow_settings.update(s, ctx.config, st.id, flow, changes, get_flow(flow).settings)
    assert str(refused.value) == message


def test_schema_types_the_settings_the_runner_reads(ctx):
    with ctx.database.session() as s:
        st = f.store(s)
        flow_settings.update(s, ctx.config, st.id, "survey", {"delay_days": 12, "kind": "csat"},
                             get_flow("survey").settings)
        loaded = runner.load_settings(s, ctx.config, get_flow("survey"), st.id)
    assert dict(loaded) == {"enabled": True, "kind": "csat", "delay_days": 12.0, "holdout_percent": 0}
    assert isinstance(loaded["delay_days"], float)


def _app_toml(tmp_path, text):
    toml = tmp_path / "app.toml"
    toml.write_text(text)
    return {"AFTERCARE_CONFIG": str(toml)}


def test_deployment_overrides_reach_the_effective_settings(ctx, tmp_path):
    """app.toml's [flows.*] and AFTERCARE_FLOWS__* override the schema's defaults; a store's own choice wins."""
    environ = {**_app_toml(tmp_path, '[flows.review_request]\ndelay_days = 5\n[flows.policy]\n'
                                     'ramadan_countries = ["SA"]\nsend_window_start = "08:30"\n'),
               "AFTERCARE_FLOWS__SURVEY__KIND": "csat", "AFTERCARE_FLOWS__POLICY__SEND_WINDOW_END": "12:00",
               "AFTERCARE_FLOWS__REPLENISHMENT__ENABLED": "false"}
    config = load_config(test_settings(ctx.database.url, tmp_path / "instance"), environ=environ)
    with ctx.database.session() as s:
        st = f.store(s)
        review = flow_settings.effective(s, config, st.id, "review_request")
        policy = flow_settings.effective(s, config, st.id, "policy")
        survey = flow_settings.effective(s, config, st.id, "survey")
        assert (review["delay_days"], review["reminder_delay_days"]) == (5.0, 7)
        assert (policy["send_window_start"], policy["send_window_end"], policy["ramadan_countries"]) == \
            ("08:30", "12:00", ["SA"])
        assert (survey["kind"], survey["delay_days"]) == ("csat", 10)
        assert flow_settings.effective(s, config, st.id, "replenishment")["enabled"] is False
        assert runner.load_settings(s, config, get_flow("review_request"), st.id)["delay_days"] == 5.0
        flow_settings.update(s, config, st.id, "review_request", {"delay_days": 3})
        assert flow_settings.effective(s, config, st.id, "review_request")["delay_days"] == 3


def test_the_repository_app_toml_holds_valid_overrides():
    environ = {"AFTERCARE_CONFIG": str(ROOT / "app.toml")}
    config = load_config(test_settings("sqlite://", ROOT / "instance"), environ=environ)
    assert flow_settings.defaults(config, "survey")["kind"] == "nps"
    assert flow_settings.defaults(config, "policy")["marketing_cap_count"] == 2


@pytest.mark.parametrize(("toml", "message"), [
    ("[flows.review_request]\ndelay = 3\n", "unknown setting 'flows.review_request.delay'"),
    ("[flows.reviews]\ndelay_days = 3\n", "unknown setting 'flows.reviews'"),
    ('[flows.review_request]\nreminder_enabled = "yes"\n',
     "setting 'flows.review_request.reminder_enabled': Send one reminder must be on or off."),
    ('[flows.survey]\ndelay_days = "ten"\n',
     "setting 'flows.survey.delay_days': Days after delivery must be a number from 0 to 365."),
    ("[flows.survey]\nholdout_percent = 60\n",
     "setting 'flows.survey.holdout_percent': Hold out this share of eligible customers (%) must be a "
     "whole number from 0 to 50."),
    ('[flows.policy]\nsend_window_start = "9 o\'clock"\n',
     "setting 'flows.policy.send_window_start': Send window starts (local time, HH:MM) must be a time like 09:00"),
])
def test_a_bad_flow_override_stops_the_web_app_and_the_jobs(database, tmp_path, monkeypatch, toml, message):
    """Checked once where every Config is built: create_app and the scheduler/CLI both refuse to start."""
    environ = _app_toml(tmp_path, toml)
    monkeypatch.setenv("AFTERCARE_CONFIG", environ["AFTERCARE_CONFIG"])
    with pytest.raises(ConfigError) as refused:
        create_app(test_settings(database.url, tmp_path / "instance"))
    assert str(refused.value) == message
    result = CliRunner().invoke(main, ["run-job", "review_requests"], env=environ)
    assert result.exit_code == 1 and result.output == f"Error: configuration: {message}\n"


def test_a_bad_flow_override_in_the_environment_names_the_variable(tmp_path):
    environ = {"AFTERCARE_FLOWS__REPLENISHMENT__LEAD_DAYS": "120"}
    with pytest.raises(ConfigError) as refused:
        load_config(test_settings("sqlite://", tmp_path / "instance"), environ=environ)
    assert str(refused.value) == ("setting 'flows.replenishment.lead_days': Remind this many days before run-out "
                                  "must be a number from 0 to 90. (from AFTERCARE_FLOWS__REPLENISHMENT__LEAD_DAYS)")
    with pytest.raises(ConfigError) as refused:
        load_config(test_settings("sqlite://", tmp_path / "instance"), environ={"AFTERCARE_FLOWS__SURVEY__DELAY": "3"})
    assert str(refused.value) == "unknown setting 'flows.survey.delay' (from AFTERCARE_FLOWS__SURVEY__DELAY)"


def _calls(tree, names):
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in names]


def test_flow_defaults_are_declared_only_in_the_schemas():
    """No module but plugin/flow_schemas.py declares a flow setting; plugin/config.py holds no flow defaults."""
    sections = set(SCHEMAS)
    keys = {setting.name for schema in SCHEMAS.values() for setting in schema}
    config_tree = ast.parse((ROOT / "plugin" / "config.py").read_text())
    literal_keys = {key.value for node in ast.walk(config_tree) if isinstance(node, ast.Dict)
                    for key in node.keys if isinstance(key, ast.Constant)}
    assert not literal_keys & (sections | keys)
    assert not {node.id for node in ast.walk(config_tree) if isinstance(node, ast.Name)} & {"FLOW_DEFAULTS"}
    declaring = set()
    for package in ("plugin", "jobs", "demo"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                        and node.module == "plugin.settings_schema" for alias in node.names}
            if _calls(tree, imported & {"Setting", "SettingsSchema"}):
                declaring.add(str(path.relative_to(ROOT)))
    assert declaring == {"plugin/flow_schemas.py"}
    assert all(flow.settings is SCHEMAS[flow.settings_section] for flow in FLOWS.values())


def test_every_customer_facing_flow_declares_a_holdout_except_review_requests():
    facing = {name for name, flow in FLOWS.items() if flow.customer_facing and flow.rule.holdout}
    assert facing == {"survey", "replenishment", "winback", "vip", "birthday", "cancellation", "ticket_followup",
                      "usage_guide", "shopping_calendar"}
    for name in facing:
        setting = get_flow(name).settings.get("holdout_percent")
        assert (setting.type, setting.default, setting.min, setting.max) == ("int", 0, 0, 50)


# -- resend of skips ----------------------------------------------------------------------------------------

def _skipped(s, store_id, reason, *, at, consent=True, marketing=False, flow="review_request"):
    c = f.customer(s, store_id, consent=consent)
    m = Message(store_id=store_id, customer_id=c.id, flow=flow, step="main", channel="email",
                idempotency_key=f"{store_id}:t:{reason}:{c.id}", scheduled_for=at, status="skipped",
                skip_reason=reason, attempts=0, marketing=marketing, payload={})
    s.add(m)
    s.flush()
    return c, m


def test_resend_only_once_the_cause_is_gone(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        no_consent_c, no_consent = _skipped(s, st.id, "no_consent", consent=False, marketing=True, at=now,
                                            flow="replenishment")
        still_c, still = _skipped(s, st.id, "no_consent", consent=False, marketing=True, at=now,
                                  flow="replenishment")
        supp_c, supp = _skipped(s, st.id, "suppressed", at=now)
        disabled_c, disabled = _skipped(s, st.id, "flow_disabled", at=now)
        flow_settings.update(s, ctx.config, st.id, "review_request", {"enabled": False},
                             get_flow("review_request").settings)
        _c, cancelled = _skipped(s, st.id, "order_cancelled", at=now)
        _c, redacted = _skipped(s, st.id, "customer_redacted", at=now)
        _c, legacy = _skipped(s, st.id, "customer redacted", at=now)
        suppress(s, st.id, supp_c.email, "unsubscribe")
        s.flush()
        assert all(cause_remains(s, ctx.config, m) for m in (no_consent, still, supp, disabled))
        # The causes go away: consent given, the suppression removed, the flow switched back on.
        s.get(Customer, no_consent_c.id).marketing_consent = True
        for row in s.scalars(select(Suppression).where(Suppression.store_id == st.id)):
            s.delete(row)
        flow_settings.update(s, ctx.config, st.id, "review_request", {"enabled": True},
                             get_flow("review_request").settings)
        s.flush()
        assert [can_resend(s, ctx.config, m) for m in (no_consent, still, supp, disabled)] == \
            [True, False, True, True]
        # Permanent causes never come back, whatever changes.
        assert [can_resend(s, ctx.config, m) for m in (cancelled, redacted, legacy)] == [False, False, False]
        assert still_c.id


def test_resend_of_a_store_skip_after_reinstall(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s, uninstalled_at=now - DAY)
        _c, m = _skipped(s, st.id, "store_not_installed", at=now)
        assert not can_resend(s, ctx.config, m)
        s.get(Store, st.id).uninstalled_at = None
        s.flush()
        assert can_resend(s, ctx.config, m)


def test_resend_of_a_holdout_skip_once_the_share_is_lowered(ctx):
    now = ctx.clock.now()
    schema = get_flow("survey").settings
    with ctx.database.session() as s:
        st = f.store(s)
        flow_settings.update(s, ctx.config, st.id, "survey", {"holdout_percent": 50}, schema)
        held = None
        for _ in range(50):
            c, m = _skipped(s, st.id, "holdout", at=now, flow="survey")
            if is_held_out(st.id, c.id, "survey", 50):
                held = m
                break
        assert held is not None
        assert not can_resend(s, ctx.config, held)
        flow_settings.update(s, ctx.config, st.id, "survey", {"holdout_percent": 0}, schema)
        assert can_resend(s, ctx.config, held)


# -- aftercare flows list -----------------------------------------------------------------------------------

def test_flows_list_prints_every_flow_with_class_trigger_and_settings():
    result = CliRunner().invoke(main, ["flows", "list"])
    assert result.exit_code == 0, result.output
    out = result.output.splitlines()
    for header in ("review_request  [review_request]  shopify", "amazon_review_request  [review_request]  amazon",
                   "review_reply  [service]  shopify", "survey  [feedback]  shopify",
                   "replenishment  [marketing]  shopify", "ticket_alert  [transactional]  shopify, amazon"):
        assert header in out
    assert "  trigger: due query: orders delivered delay_days ago (fulfilled, when the carrier gives no delivery " \
           "date)" in out
    assert "  steps: main" in out
    assert "  steps: followup, comeback [marketing]" in out  # ticket_followup: every ticket, the survey's too
    for line in ("    delay_days: float = 7", "    kind: choice = 'nps'", "    discount_enabled: bool = False",
                 "    sla_hours_severity_1: float = 1", "    auto_reply_min_rating: int = 4"):
        assert line in out
    # survey, replenishment, win-back, VIP, birthdays, cancellation, ticket_followup, usage_guide, shopping
    # calendar; never review requests nor transactional notices (delivery updates, first-order welcome)
    assert out.count("    holdout_percent: int = 0") == 9
