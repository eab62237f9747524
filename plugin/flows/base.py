"""What a flow declares: class, trigger, audience, timing, steps, exits, idempotency key and its settings schema.

A flow module builds one ``Flow`` from these types; ``plugin.flows.runner`` does the rest (store installed and
on the flow's platform, flow enabled, settings loaded once and typed, holdout, rows written through the outbox).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from plugin.config import Config
from plugin.models import Store
from plugin.settings_schema import SettingsSchema

FlowClass = Literal["transactional", "service", "review_request", "feedback", "marketing"]


@dataclass(frozen=True)
class ClassRule:
    """What a flow class allows (DESIGN §4): the consent rule and which offers a message may hold."""

    consent: str
    offers: Literal["never", "disclosed", "yes"]
    # A holdout asks some eligible customers and not others: for review requests that is selective
    # solicitation, which Amazon and the FTC forbid ("every eligible customer is asked", DESIGN §1).
    holdout: bool = True


CLASS_RULES: dict[str, ClassRule] = {
    # A transactional message is owed to every customer it concerns (their parcel, their payment): none is held out.
    "transactional": ClassRule("none (one-click opt-out of that kind)", "never", holdout=False),
    "service": ClassRule("none while it holds no offer", "never"),
    "review_request": ClassRule("none (never gated)", "disclosed", holdout=False),
    "feedback": ClassRule("none", "never"),
    "marketing": ClassRule("marketing consent", "yes"),
}


@dataclass
class FlowRun:
    """One run of a flow for one store: what its steps read, and the counts they add to."""

    session: Session
    config: Config
    store: Store
    settings: Mapping[str, Any]
    now: datetime
    counts: dict[str, int] = field(default_factory=dict)


Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Step:
    """A message step: the due query that returns its outbox rows, its template step, and how it is counted.

    New ``scheduled`` rows add to ``counter``; new rows of any other status to ``skipped_counter`` (to
    ``counter`` when None). ``not_sent_counter`` counts due rows that were not scheduled, new or not.
    ``when`` names a bool setting that switches the step on (e.g. the reminder). ``step_class`` overrides the
    flow's class for this step (the survey's come-back offer is marketing: consent required, offers allowed).
    ``offer_makes_marketing`` lets a service step write marketing rows for merchant content holding an offer.
    """

    name: str
    due: Callable[[FlowRun], Rows]
    about: str
    template: str | None = None
    counter: str | None = None
    skipped_counter: str | None = None
    not_sent_counter: str | None = None
    when: str | None = None
    step_class: FlowClass | None = None
    # A service step whose content the merchant writes (usage guides): a row whose content holds an offer is
    # marketing (consent required); the email channel refuses offer content in the step's other rows.
    offer_makes_marketing: bool = False


@dataclass(frozen=True)
class Exit:
    """Why a customer leaves a flow; ``apply`` (when given) cancels rows already planned and returns how many."""

    reason: str
    about: str
    apply: Callable[[FlowRun], int] | None = None
    counter: str | None = None


@dataclass(frozen=True)
class Flow:
    """A declared flow (DESIGN §4): everything the runner, the admin and `aftercare flows list` need."""

    name: str
    title: str
    flow_class: FlowClass
    platforms: tuple[str, ...]
    trigger: str
    audience: tuple[str, ...]
    timing: str
    steps: tuple[Step, ...]
    exits: tuple[Exit, ...]
    idempotency_key: str
    settings: SettingsSchema
    about: str = ""
    counts: tuple[str, ...] = ()
    customer_facing: bool = True
    # Settings section in flow_settings (the flow's name unless it shares one, e.g. ticket alerts → tickets).
    section: str = ""
    # False for flows run by their own job or channel (the runner refuses them).
    runs_here: bool = True

    def __post_init__(self) -> None:
        if not self.rule.holdout and self.settings.get("holdout_percent") is not None:
            raise ValueError(f"flow {self.name!r}: a {self.flow_class} flow may not hold customers out "
                             "(every eligible customer is asked)")

    @property
    def settings_section(self) -> str:
        """Return the flow_settings section holding this flow's settings."""
        return self.section or self.name

    @property
    def rule(self) -> ClassRule:
        """Return the consent and offers rule of the flow's class."""
        return CLASS_RULES[self.flow_class]

    @property
    def offers(self) -> str:
        """Return which offers the flow's messages may hold: Amazon forbids any (DESIGN §1)."""
        return "never" if self.platforms == ("amazon",) else self.rule.offers
