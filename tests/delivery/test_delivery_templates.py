"""The delivery-update template in every shipped locale, and the template check that keeps offers out of it."""

from __future__ import annotations

import tomllib

import pytest

from plugin.messaging import locales, templates
from plugin.messaging.templates import TemplateRefused


def _catalog(locale: str) -> dict:
    with (templates.DEFAULTS_DIR / f"{locale}.toml").open("rb") as fh:
        return tomllib.load(fh)


@pytest.mark.parametrize("locale", locales.SUPPORTED)
def test_every_locale_ships_its_own_delivery_update(locale: str) -> None:
    catalog = _catalog(locale)
    assert "delivery_update" in catalog, locale  # not the English fallback
    ui = catalog["ui"]
    for code in ("SHIPPED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "ATTEMPTED_DELIVERY", "DELAYED", "DELIVERED",
                 "FAILURE", "CONFIRMED"):
        assert ui[f"m_{code}"], (locale, code)
    for key in ("track_title", "track_expected", "track_problem", "track_policy", "delivery_off_question",
                "delivery_off_button", "delivery_off_done"):
        assert ui[key], (locale, key)
    rendered = templates.preview("delivery_update", "main", locale)
    assert rendered.subject == f"{ui['m_OUT_FOR_DELIVERY']} · #1001"
    assert f'lang="{locale}"' in rendered.html and f'dir="{locales.direction(locale)}"' in rendered.html
    assert ui["m_IN_TRANSIT"] in rendered.text and "https://aftercare.example/t/sample" in rendered.text
    if locale != "en":
        english = _catalog("en")["ui"]
        assert english["m_OUT_FOR_DELIVERY"] not in rendered.html or ui["m_OUT_FOR_DELIVERY"] == \
            english["m_OUT_FOR_DELIVERY"]
    # The shipped template passes the merchant's own check.
    source = templates.default_source("delivery_update", "main", locale)
    templates.validate_template("delivery_update", "main", source.subject, source.html, locale=locale)


def test_arabic_is_right_to_left() -> None:
    assert 'dir="rtl"' in templates.preview("delivery_update", "main", "ar").html


@pytest.mark.parametrize("body", [
    "<p>{{ discount_code }}</p>",
    "<p>Take 10% off your next order with a coupon</p>",
    "<p>You may also like <a href='https://example-store.myshopify.com/products/soap'>soap</a></p>",
    "<p>{% for p in recommendations %}{{ p }}{% endfor %}</p>",
])
def test_the_template_check_refuses_offers_in_delivery_updates(body: str) -> None:
    with pytest.raises(TemplateRefused, match="no offer or recommendation"):
        templates.validate_template("delivery_update", "main", "{{ milestone_label }}", body)


def test_an_offer_stays_allowed_where_the_class_allows_it() -> None:
    templates.validate_template("replenishment", "main", "Refill", "<p>{{ discount_code }}</p>")
