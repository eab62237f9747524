"""Templates: sandboxing, refusal of broken templates, shipped defaults in every locale, RTL, Babel filters."""

from __future__ import annotations

import re
import tomllib
from datetime import date

import pytest

from plugin.messaging import locales, templates
from plugin.messaging.templates import FLOW_STEPS, TemplateRefused, TemplateSource, validate_template
from plugin.models import Template
from tests.messaging import seed


def test_every_shipped_template_renders_in_every_locale() -> None:
    en_ui = set(tomllib.loads((templates.DEFAULTS_DIR / "en.toml").read_text())["ui"])
    for locale in locales.SUPPORTED:
        catalog = tomllib.loads((templates.DEFAULTS_DIR / f"{locale}.toml").read_text())
        assert set(catalog["ui"]) == en_ui, locale
        for flow, steps in FLOW_STEPS.items():
            for step in steps:
                assert step in catalog[flow], (locale, flow, step)  # translated, not the English fallback
                rendered = templates.preview(flow, step, locale)
                assert rendered.subject and "{{" not in rendered.subject
                assert f'<html lang="{locale}" dir="{locales.direction(locale)}">' in rendered.html
                # Inlined for email clients; only the dark-mode rules stay in a <style> (they cannot be inlined).
                styles = re.findall(r"<style>(.*?)</style>", rendered.html, re.S)
                assert len(styles) == 1 and styles[0].strip().startswith("@media (prefers-color-scheme: dark) {")
                assert styles[0].strip().endswith("}") and styles[0].count("@") == 1


def test_arabic_is_right_to_left() -> None:
    rendered = templates.preview("review_request", "main", "ar")
    assert rendered.html.startswith('<!DOCTYPE html><html lang="ar" dir="rtl">')
    assert '<body dir="rtl"' in rendered.html
    assert rendered.subject == "ما رأيك في طلبك من Example Store؟"
    assert "قيّم Lavender soap" in rendered.text


def test_missing_variable_is_refused_with_its_name() -> None:
    with pytest.raises(TemplateRefused, match=r"unknown variable 'gift_wrap'"):
        validate_template("review_request", "main", "Hello", "<p>{{ gift_wrap }}</p>")
    # An offer in a review request's template is refused before any rendering (only the disclosed incentive
    # setting may carry one).
    with pytest.raises(TemplateRefused, match=r'no offer or recommendation \("coupon"\)'):
        validate_template("review_request", "main", "Hello", "<p>{{ coupon }}</p>")
    with pytest.raises(TemplateRefused, match=r"'dict object' has no attribute 'last_name'"):
        validate_template("replenishment", "main", "Hi {{ customer.last_name }}", "<p>x</p>")


def test_syntax_error_is_refused() -> None:
    with pytest.raises(TemplateRefused, match=r"line 1"):
        validate_template("test", "main", "Test", "<p>{% if %}</p>")


def test_sandbox_blocks_python_internals() -> None:
    with pytest.raises(TemplateRefused, match="unsafe|not safely"):
        validate_template("test", "main", "x", "{{ store.__class__.__mro__ }}")
    with pytest.raises(TemplateRefused):
        validate_template("test", "main", "x", "{{ store.update({'name': 'pwned'}) }}")


def test_review_request_may_not_depend_on_a_score() -> None:
    with pytest.raises(TemplateRefused, match="may not depend on a score"):
        validate_template("review_request", "main", "Review", "{% if score > 8 %}<p>Review us!</p>{% endif %}")


def test_valid_template_returns_a_preview_with_the_merchant_text_escaped() -> None:
    rendered = validate_template("test", "main", "Hello {{ store.name }}", "<p>Hi <b>{{ store.name }}</b></p>")
    assert rendered.subject == "Hello Example Store"
    assert "<b>Example Store</b>" in rendered.html
    evil = templates.render_email("test", TemplateSource("x", "<p>{{ store.name }}</p>"),
                                  {"store": {"name": "<script>alert(1)</script>"}}, "en")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in evil.html and "<script>" not in evil.html


def test_incentive_is_disclosed_by_the_layout() -> None:
    context = templates.sample_context("review_request", "main", "en")
    context["incentive_text"] = "a 10 % voucher"
    rendered = templates.render_email("review_request", templates.default_source("review_request", "main", "en"),
                                      context, "en")
    words = ("Thank-you gift for reviewing: a 10 % voucher. You get it whatever your review says; honest "
             "opinions, positive or negative, are welcome.")
    assert words in rendered.html and words in rendered.text


def test_babel_formats_for_the_customer_locale() -> None:
    context = templates.sample_context("replenishment", "main", "de")
    rendered = templates.render_email("replenishment", templates.default_source("replenishment", "main", "de"),
                                      context, "de")
    assert "etwa am 20. März 2026 aufgebraucht" in rendered.text
    assert "spart 10\xa0%" in rendered.text
    money = templates.render_email("test", TemplateSource("x", "{{ 1234.5|format_money('EUR') }}"), {}, "fr")
    assert "1\u202f234,50\xa0€" in money.text
    ja = templates.render_email("test", TemplateSource("x", "{{ d|format_date }}"), {"d": date(2026, 3, 20)}, "ja")
    assert "2026年3月20日" in ja.text


@pytest.mark.parametrize(("tag", "expected"), [
    ("pt", "pt-BR"), ("pt_PT", "pt-BR"), ("zh-CN", "zh-Hans"), ("zh", "zh-Hans"), ("zh-TW", "zh-Hant"),
    ("zh-HK", "zh-Hant"), ("zh-Hant-HK", "zh-Hant"), ("de-AT", "de"), ("en-GB", "en"), ("AR-sa", "ar"),
    ("nl", None), ("", None),
])
def test_locale_normalisation(tag: str, expected: str | None) -> None:
    assert locales.normalize(tag) == expected


def test_locale_choice_customer_then_store_then_english() -> None:
    assert locales.choose("fr-CA", "de") == "fr"
    assert locales.choose("nl", "de") == "de"
    assert locales.choose(None, "sv") == "en"


def test_store_template_overrides_the_shipped_one(db_session) -> None:
    store = seed.store(db_session)
    db_session.add(Template(store_id=store.id, flow="survey", step="main", locale="fr", subject="Votre avis",
                            body_html="<p>Merci {{ customer.first_name }}</p>"))
    db_session.flush()
    assert templates.get_source(db_session, store.id, "survey", "main", "fr").subject == "Votre avis"
    assert templates.get_source(db_session, store.id, "survey", "main", "de").subject.startswith("{% if kind")
