"""The recommendations block belongs to marketing templates only: every marketing step offers it, and a
transactional, service, feedback or review-request template that names it is refused before it is saved."""

from __future__ import annotations

import pytest

from plugin.flows import FLOWS
from plugin.messaging import locales
from plugin.messaging.templates import FLOW_STEPS, MARKETING_STEPS, TemplateRefused, preview, validate_template

BLOCK = "{% for item in recommendations %}<p>{{ item.title }}</p>{% endfor %}"


def test_marketing_steps_are_the_declared_marketing_steps():
    declared = {(flow.name, step.name) for flow in FLOWS.values() for step in flow.steps
                if step.template and (step.step_class or flow.flow_class) == "marketing"}
    assert MARKETING_STEPS == declared


@pytest.mark.parametrize(("flow", "step"), sorted((f, s) for f, steps in FLOW_STEPS.items() for s in steps
                                                  if (f, s) not in MARKETING_STEPS))
def test_other_classes_refuse_the_block(flow, step):
    with pytest.raises(TemplateRefused, match="recommendations"):
        validate_template(flow, step, "Hello", f"<p>Hi</p>{BLOCK}")


@pytest.mark.parametrize(("flow", "step"), sorted(MARKETING_STEPS))
def test_marketing_templates_show_the_block(flow, step):
    rendered = validate_template(flow, step, "Hello", f"<p>Hi</p>{BLOCK}")
    assert "Rosemary hand cream" in rendered.html


@pytest.mark.parametrize("locale", locales.SUPPORTED)
def test_shipped_winback_templates_name_code_amounts_and_recommendations(locale):
    for step in ("main", "reminder"):
        rendered = preview("winback", step, locale)
        assert "WELCOMEBACK-3F9A1C2B7D" in rendered.html
        assert "Rosemary hand cream" in rendered.html and "rosemary-hand-cream" in rendered.html
        assert rendered.subject


@pytest.mark.parametrize("locale", locales.SUPPORTED)
def test_shipped_vip_template_names_code_perks_and_recommendations(locale):
    rendered = preview("vip", "main", locale)
    assert "VIP-8E21F0A4C9" in rendered.html and "Free shipping on every order" in rendered.html
    assert "Rosemary hand cream" in rendered.html


@pytest.mark.parametrize("locale", locales.SUPPORTED)
def test_shipped_birthday_template_names_code_and_recommendations(locale):
    rendered = preview("birthday", "main", locale)
    assert "BDAY-5C0FFEE123" in rendered.html and "Rosemary hand cream" in rendered.html
