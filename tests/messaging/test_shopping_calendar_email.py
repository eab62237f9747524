"""Shopping-calendar emails over the Shopify and SMTP sandboxes: one single-use code per recipient created through
discountCodeBasicCreate (a retried dispatch never makes a second), consent honoured, the copy chosen per event and
language, and the send policy's quiet days still apply: Ramadan daytime for the store's Ramadan countries, and
national holidays of the customer's country."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from jobs.dispatch import dispatch_due
from plugin import flow_settings
from plugin import shopping_calendar as cal
from plugin.analytics import SegmentRules, refresh_customer_metrics
from plugin.flows import runner
from plugin.messaging import templates
from plugin.models import Message, Store
from sandbox.smtp import SmtpSandbox
from tests.conftest import wipe
from tests.jobs import factory as f
from tests.shopify_sync_harness import make_harness

DAY = timedelta(days=1)
FLOW = "shopping_calendar"
LOCALES = ("ar", "de", "en", "es", "fr", "it", "ja", "pt-BR", "zh-Hans", "zh-Hant")


def _growth(s, sid, at, **kw):
    """A growth-segment customer: one order of $250."""
    c = f.customer(s, sid, **kw)
    f.order(s, sid, c.id, at - 20 * DAY, total_price=Decimal("250"))
    return c


def _html(mail) -> str:
    return mail.message.get_body(("html",)).get_content()


def _codes(harness, prefix):
    return [d for d in harness.sandbox.shop_state().discounts.values() if d.code.startswith(prefix)]


def test_christmas_codes_once_per_recipient_consent_and_local_copy(database, tmp_path) -> None:
    harness = make_harness(database, tmp_path, customers=4, orders=3)
    try:
        with SmtpSandbox() as smtp:
            harness.ctx.extras["smtp_url"] = f"smtp://127.0.0.1:{smtp.port}"
            sid = harness.store_id
            remote = harness.sandbox.store.customers[:3]
            scored = datetime(2026, 12, 1, tzinfo=UTC)
            with database.session() as s:
                store = s.get(Store, sid)
                store.country, store.timezone = "US", "America/New_York"
                kim = _growth(s, sid, scored, email="kim@example.com", country="US", time_zone="America/New_York")
                lee = _growth(s, sid, scored, email="lee@example.com", consent=False, country="US",
                              time_zone="America/New_York")
                tomo = _growth(s, sid, scored, email="tomo@example.jp", country="JP", time_zone="Asia/Tokyo",
                               locale="ja")
                for c, r in zip((kim, lee, tomo), remote, strict=True):
                    c.external_id = str(r.id)
                ids = {"kim": kim.id, "lee": lee.id, "tomo": tomo.id}
                refresh_customer_metrics(s, sid, scored, SegmentRules())
            # 22 December, 00:00 UTC = 09:00 in Tokyo: Tomo's email is due; New York's, planned in the same run
            # (within the 48 hours ahead), wait for 14:00 UTC.
            tokyo = datetime(2026, 12, 22, 0, 0, tzinfo=UTC)
            harness.clock.set(tokyo)
            assert runner.run(harness.ctx, sid, FLOW) == {"planned": 3, "not_sent": 0}
            assert dispatch_due(harness.ctx) == {"sent": 1}
            assert [m.message["To"] for m in smtp.messages] == ["tomo@example.jp"]
            harness.clock.set(datetime(2026, 12, 22, 13, 59, tzinfo=UTC))
            assert dispatch_due(harness.ctx) == {}
            new_york = datetime(2026, 12, 22, 14, 0, tzinfo=UTC)
            harness.clock.set(new_york)
            assert runner.run(harness.ctx, sid, FLOW) == {"planned": 0, "not_sent": 0}
            assert dispatch_due(harness.ctx) == {"sent": 1, "skipped": 1, "skipped:no_consent": 1}
            codes = sorted(_codes(harness, "CHRISTMAS-"), key=lambda d: d.customer_ids)
            assert sorted((c.percentage, c.usage_limit, c.customer_ids, c.ends_at) for c in codes) == sorted([
                (0.15, 1, (f"gid://shopify/Customer/{remote[0].id}",), new_york + 7 * DAY),
                (0.15, 1, (f"gid://shopify/Customer/{remote[2].id}",), tokyo + 7 * DAY)])
            by_to = {m.message["To"]: m for m in smtp.messages}
            assert set(by_to) == {"kim@example.com", "tomo@example.jp"}
            ja, en = _html(by_to["tomo@example.jp"]), _html(by_to["kim@example.com"])
            assert "クリスマス" in ja and "Christmas" in en
            own = {c.customer_ids[0]: c.code for c in codes}
            assert own[f"gid://shopify/Customer/{remote[2].id}"] in ja
            assert own[f"gid://shopify/Customer/{remote[0].id}"] in en
            with database.session() as s:
                rows = {m.customer_id: m for m in s.scalars(select(Message).where(Message.flow == FLOW))}
                assert (rows[ids["lee"]].status, rows[ids["lee"]].skip_reason) == ("skipped", "no_consent")
                sent = rows[ids["kim"]]
                assert sent.status == "sent" and sent.payload["discount_created"] is True
                # A crash after the code was created, before it was recorded: the retried dispatch meets Shopify's
                # TAKEN for its own code, sends the same email, and no second code exists.
                sent.status, sent.payload = "scheduled", {**sent.payload, "discount_created": False}
            assert dispatch_due(harness.ctx) == {"sent": 1}
            assert len(_codes(harness, "CHRISTMAS-")) == 2
            assert smtp.messages[-1].message_id == by_to["kim@example.com"].message_id
            # The flow running again the same day (and the next) writes and creates nothing more.
            harness.clock.set(new_york + DAY)
            assert runner.run(harness.ctx, sid, FLOW) == {"planned": 0, "not_sent": 0}
            assert dispatch_due(harness.ctx) == {}
            assert len(_codes(harness, "CHRISTMAS-")) == 2
    finally:
        harness.stop()
        wipe(database.engine)


def test_ramadan_daytime_and_national_holidays_still_apply(database, tmp_path) -> None:
    harness = make_harness(database, tmp_path, customers=4, orders=3)
    try:
        with SmtpSandbox() as smtp:
            harness.ctx.extras["smtp_url"] = f"smtp://127.0.0.1:{smtp.port}"
            sid = harness.store_id
            remote = harness.sandbox.store.customers[:3]
            scored = datetime(2026, 2, 1, tzinfo=UTC)
            with database.session() as s:
                store = s.get(Store, sid)
                store.country, store.timezone = "US", "America/New_York"
                riyadh = _growth(s, sid, scored, email="noura@example.sa", country="SA", time_zone="Asia/Riyadh",
                                 locale="ar")
                dubai = _growth(s, sid, scored, email="omar@example.ae", country="AE", time_zone="Asia/Dubai",
                                locale="ar")
                osaka = _growth(s, sid, scored, email="yui@example.jp", country="JP", time_zone="Asia/Tokyo",
                                locale="ja")
                for c, r in zip((riyadh, dubai, osaka), remote, strict=True):
                    c.external_id = str(r.id)
                ids = {"riyadh": riyadh.id, "dubai": dubai.id, "osaka": osaka.id}
                refresh_customer_metrics(s, sid, scored, SegmentRules())
                # The merchant applies the Ramadan rule to Saudi Arabia only.
                flow_settings.update(s, harness.ctx.config, sid, "policy", {"ramadan_countries": ["SA"]})
            # Valentine's Day in Japan: due 11 February 09:00 JST, but 11 February is Foundation Day, a national
            # holiday: the email moves to the 12th at 09:00 JST (00:00 UTC).
            harness.clock.set(datetime(2026, 2, 11, 0, 0, tzinfo=UTC))
            assert runner.run(harness.ctx, sid, FLOW)["planned"] == 1
            assert dispatch_due(harness.ctx) == {"rescheduled": 1}
            with database.session() as s:
                m = s.scalar(select(Message).where(Message.customer_id == ids["osaka"]))
                assert (m.status, m.skip_reason, m.scheduled_for) == (
                    "scheduled", "holiday", datetime(2026, 2, 12, 0, 0, tzinfo=UTC))
            harness.clock.set(datetime(2026, 2, 12, 0, 0, tzinfo=UTC))
            assert dispatch_due(harness.ctx) == {"sent": 1}
            assert "バレンタイン" in _html(smtp.messages[-1])

            # Eid al-Fitr 2026 is 20 March: emails on the 17th at 09:00 local, still in Ramadan. Dubai (not a
            # Ramadan-rule country for this store) gets it at 09:00 (05:00 UTC); Riyadh's waits for the evening,
            # 19:00 local (16:00 UTC).
            harness.clock.set(datetime(2026, 3, 17, 5, 0, tzinfo=UTC))
            assert runner.run(harness.ctx, sid, FLOW)["planned"] == 2
            assert dispatch_due(harness.ctx) == {"sent": 1}
            assert smtp.messages[-1].message["To"] == "omar@example.ae"
            harness.clock.set(datetime(2026, 3, 17, 6, 0, tzinfo=UTC))
            assert runner.run(harness.ctx, sid, FLOW)["planned"] == 0
            assert dispatch_due(harness.ctx) == {"rescheduled": 1}
            with database.session() as s:
                m = s.scalar(select(Message).where(Message.customer_id == ids["riyadh"]))
                assert (m.status, m.skip_reason, m.scheduled_for) == (
                    "scheduled", "ramadan_daytime", datetime(2026, 3, 17, 16, 0, tzinfo=UTC))
            harness.clock.set(datetime(2026, 3, 17, 16, 0, tzinfo=UTC))
            assert dispatch_due(harness.ctx) == {"sent": 1}
            eid = smtp.messages[-1]
            assert eid.message["To"] == "noura@example.sa"
            assert "عيد مبارك" in eid.message["Subject"] and "عيديتك" in _html(eid)
            assert len(_codes(harness, "EIDALFITR-")) == 2
    finally:
        harness.stop()
        wipe(database.engine)


# -- copy per event and language ------------------------------------------------------------------------------

def _render(key: str, locale: str, **payload):
    ctx = templates.sample_context(FLOW, "main", locale)
    ctx["event"] = templates.event_vars({"event_key": key, "event_on": "2026-11-08", **payload}, locale)
    source = templates.default_source(FLOW, "main", locale)
    return templates.render_email(FLOW, source, ctx, locale, None)


@pytest.mark.parametrize("locale", LOCALES)
def test_every_event_renders_in_every_locale_with_its_title(locale):
    for key in cal.DEFAULTS:
        rendered = _render(key, locale)
        assert "LUNARNEWYEAR-7B3D90E1AF" in rendered.html, (key, locale)
        assert rendered.subject.strip(), (key, locale)
    # A merchant's own event shows the merchant's name for it.
    assert "Anniversaire Nº 10" in _render("custom_anniversary", locale, event_title="Anniversaire Nº 10").html


def test_the_copy_fits_each_culture_rather_than_translating_one_text():
    # Lunar New Year: a red envelope (红包 / 紅包) and, in Taiwan and Hong Kong, 恭喜發財.
    assert "红包" in _render("lunar_new_year", "zh-Hans").html
    zh_hant = _render("lunar_new_year", "zh-Hant")
    assert "紅包" in zh_hant.html and "恭喜發財" in zh_hant.subject
    # Eid: the greeting and the eidiya (عيدية), the gift of money children get; Ramadan: Ramadan Kareem.
    eid = _render("eid_al_fitr", "ar")
    assert "عيد مبارك" in eid.subject and "عيديتك" in eid.html
    assert "رمضان كريم" in _render("ramadan", "ar").subject
    # In the Gulf, Black Friday is "White Friday" (الجمعة البيضاء).
    assert "الجمعة البيضاء" in _render("black_friday", "ar").subject
    # Diwali in Indian English: the festival of lights, diyas, the family.
    diwali = _render("diwali", "en")
    assert "Happy Diwali" in diwali.subject and "diyas" in diwali.html and "festival of lights" in diwali.html
    # Japan: Shichi-Go-San blesses the children's growth; Golden Week is about the long holiday.
    assert "七五三" in _render("shichi_go_san", "ja").subject and "ご成長" in _render("shichi_go_san", "ja").html
    assert "連休" in _render("golden_week", "ja").html
    # China's own festivals: Singles' Day (双十一) and 618.
    assert "双十一" in _render("singles_day", "zh-Hans").subject and "618" in _render("mid_year_618", "zh-Hans").subject
    # Brazil: Dia dos Namorados on 12 June, not Valentine's Day.
    assert "12 de junho" in _render("dia_dos_namorados", "pt-BR").html
    # Christmas: Advent in German, the tree in Italian and French.
    assert "Advent" in _render("christmas", "de").html and "albero" in _render("christmas", "it").html
    assert "sapin" in _render("christmas", "fr").html
    # The event-specific paragraph is not the generic one.
    assert _render("lunar_new_year", "zh-Hans").html != _render("custom_x", "zh-Hans", event_title="春节").html
