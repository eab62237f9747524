"""One vocabulary: every skip or cancel reason written anywhere is a code with a label in every shipped locale."""

from __future__ import annotations

import re

from plugin.auth.lifecycle import SKIP_REINSTALL_NEEDED, SKIP_UNINSTALLED
from plugin.messaging import locales, policy, reasons
from plugin.webhooks.compliance import REDACTED_SKIP_REASON
from plugin.webhooks.deletions import CUSTOMER_DELETED, ORDER_DELETED, PRODUCT_DELETED
from plugin.webhooks.processing import SKIP_CONSENT_WITHDRAWN
from tests.paths import ROOT

# Literal reasons in the writers' sources: skip_reason="...", skip_reason = '...', _skip("..."), and the
# reschedule reasons of the send policy and the send-time rules.
_LITERALS = (re.compile(r"""skip_reason\s*=\s*["']([^"']+)["']"""), re.compile(r"""_skip\(["'](\w+)["']\)"""),
             re.compile(r"""Decision\("reschedule", ["'](\w+)["']"""), re.compile(r"""reason or ["'](\w+)["']"""),
             re.compile(r"""first_reason or ["'](\w+)["']"""), re.compile(r"""["'](\w+)["'] if \w+ else None"""),
             # A channel's own outcomes (plugin/messaging/channels/amazon_solicitation.py) and their reconciliation.
             re.compile(r"""NotSent\(["'](\w+)["']"""), re.compile(r"""\breason=["'](\w+)["']\)"""))


def _written_literals() -> set[str]:
    found: set[str] = set()
    for folder in ("plugin", "jobs"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for pattern in _LITERALS:
                found.update(pattern.findall(text))
    return found


def _written() -> set[str]:
    constants = {reasons.ORDER_CANCELLED, reasons.ORDER_REFUNDED, reasons.ORDER_RETURNED, reasons.NO_CONTACT_ACCESS,
                 reasons.HOLDOUT, reasons.ALREADY_REORDERED, reasons.ACTIVE_SUBSCRIPTION,
                 reasons.NO_MERCHANT_ADDRESS, reasons.NO_POSTAL_ADDRESS, SKIP_UNINSTALLED, SKIP_REINSTALL_NEEDED,
                 REDACTED_SKIP_REASON, ORDER_DELETED, PRODUCT_DELETED,
                 CUSTOMER_DELETED, SKIP_CONSENT_WITHDRAWN, "unsubscribed"}
    return constants | _written_literals()


def test_every_written_reason_is_a_code_with_a_label_in_every_locale():
    written = _written()
    # The scan finds the send policy's own codes (a sanity check that it reads the sources at all).
    assert {"no_consent", "frequency_cap", "outside_window", "holiday", "suppressed"} <= written
    assert {"not_offered", "already_solicited", "throttled", "delivery_unknown", "window_closed"} <= written
    unknown = {r for r in written if reasons.code_of(r) not in reasons.CODES}
    assert unknown == set()
    for code in {reasons.code_of(r) for r in written}:
        labels = reasons.LABELS[code]
        assert set(labels) >= set(locales.SUPPORTED), code
        assert all(labels[loc].strip() for loc in locales.SUPPORTED), code


def test_every_label_is_in_every_locale_and_the_policy_words_come_from_there():
    for code, labels in reasons.LABELS.items():
        assert set(labels) == set(locales.SUPPORTED), code
    assert len(locales.SUPPORTED) == 10 and "ar" in locales.SUPPORTED
    assert policy.REASONS["no_consent"] == "The customer has not agreed to receive marketing emails."
    assert policy.REASONS == {code: labels["en"] for code, labels in reasons.LABELS.items()}


def test_labels_in_the_admins_locale_and_prose_read_as_codes():
    assert reasons.label("order_refunded", "de") == "Die Bestellung wurde erstattet."
    assert reasons.label("holdout", "ar-SA").startswith("استُبعد عمدًا")
    assert reasons.label("customer redacted", "fr") == "Les données du client ont été effacées à sa demande."
    assert reasons.label("suppressed", "xx") == "The address unsubscribed or bounced."
    assert reasons.is_permanent("order_cancelled") and reasons.is_permanent("customer redacted")
    assert not reasons.is_permanent("no_consent")
