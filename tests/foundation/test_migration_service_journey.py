"""Migration 0008 on a database holding survey follow-ups: they become the complaint follow-through's, so no
resolved ticket is followed up twice (SQLite or PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import MetaData, Table, insert, select

from plugin.db import Database
from plugin.migrate import upgrade

BEFORE = "0012_replenish"  # the parent of 0013_service, the migration under test
AT = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


def test_survey_follow_ups_rows_templates_and_settings_move_to_the_follow_through(fresh_url: str) -> None:
    upgrade(fresh_url, BEFORE)
    database = Database(fresh_url)
    with database.session() as session:
        tables = MetaData()
        t = {name: Table(name, tables, autoload_with=session.connection())
             for name in ("merchant", "store", "message", "template", "flow_settings")}
        merchant_id = session.execute(insert(t["merchant"]).values(name="m", settings={})
                                      .returning(t["merchant"].c.id)).scalar_one()
        store_id = session.execute(insert(t["store"]).values(
            merchant_id=merchant_id, platform="shopify", external_id="old.myshopify.com", marketplace_ids=[],
            name="", currency="USD", timezone="UTC", primary_locale="en", status="active",
            scopes="").returning(t["store"].c.id)).scalar_one()
        for key, step in (("1:survey:order=5:step=main", "main"), ("1:survey:ticket=3:step=followup", "followup"),
                          ("1:survey:ticket=3:step=comeback", "comeback")):
            session.execute(insert(t["message"]).values(
                store_id=store_id, flow="survey", step=step, channel="email", marketing=step == "comeback",
                idempotency_key=key, scheduled_for=AT, status="sent", attempts=1, payload={}, created_at=AT,
                updated_at=AT))
        for step in ("main", "followup"):
            session.execute(insert(t["template"]).values(store_id=store_id, flow="survey", step=step, locale="en",
                                                         subject=step, body_html="<p>x</p>", created_at=AT,
                                                         updated_at=AT))
        session.execute(insert(t["flow_settings"]).values(
            store_id=store_id, flow="survey", enabled=True, created_at=AT, updated_at=AT,
            settings={"kind": "csat", "delay_days": 12, "followup_days": 5, "comeback_discount_percent": 15}))
    database.dispose()

    upgrade(fresh_url)
    database = Database(fresh_url)
    with database.session() as session:
        tables = MetaData()
        t = {name: Table(name, tables, autoload_with=session.connection())
             for name in ("message", "template", "flow_settings")}
        messages = dict(session.execute(select(t["message"].c.idempotency_key, t["message"].c.flow)).all())
        templates = sorted(session.execute(select(t["template"].c.flow, t["template"].c.step)).all())
        settings = dict(session.execute(select(t["flow_settings"].c.flow, t["flow_settings"].c.settings)).all())
    database.dispose()
    assert messages == {"1:survey:order=5:step=main": "survey", "1:survey:ticket=3:step=followup": "ticket_followup",
                        "1:survey:ticket=3:step=comeback": "ticket_followup"}
    assert templates == [("survey", "main"), ("ticket_followup", "followup")]
    assert settings == {"survey": {"kind": "csat", "delay_days": 12},
                        "ticket_followup": {"followup_days": 5, "comeback_discount_percent": 15}}
