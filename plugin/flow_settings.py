"""Effective flow settings: app.toml's [flows.<name>] defaults overlaid by the store's own choices.

Validation comes from the flow's declared settings schema (plugin.flows: types, bounds, choices, messages),
passed in by the caller that knows the flow (the admin); this module stays below the flows, which read their
settings through it.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.config import Config, ConfigError
from plugin.models import FlowSettings


class Schema(Protocol):
    """What validation needs of a declared settings schema (plugin.flows.base.SettingsSchema)."""

    def validate(self, section: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Return the changes in their types, or raise ConfigError naming the setting."""


def defaults(config: Config, flow: str) -> dict[str, Any]:
    """Return the deployment's defaults for a flow (empty when the flow has none)."""
    return copy.deepcopy(dict(config.section("flows").get(flow) or {}))


def effective(session: Session, config: Config, store_id: int, flow: str) -> dict[str, Any]:
    """Return a flow's settings for one store: defaults, then the store's overrides."""
    merged = defaults(config, flow)
    row = session.scalar(select(FlowSettings).where(FlowSettings.store_id == store_id, FlowSettings.flow == flow))
    if row is not None:
        merged.update(row.settings or {})
        merged["enabled"] = row.enabled
    merged.setdefault("enabled", True)
    return merged


def update(session: Session, config: Config, store_id: int, flow: str, changes: dict[str, Any],
           schema: Schema | None = None) -> FlowSettings:
    """Validate and store a store's overrides for a flow; unknown keys and refused values raise ConfigError.

    With the flow's ``schema`` its types, bounds and messages decide; without one, the types of the defaults.
    """
    base = defaults(config, flow)
    if not base and schema is None:
        raise ConfigError(f"unknown flow '{flow}'")
    clean = schema.validate(flow, changes) if schema is not None else _by_default_types(base, flow, changes)
    return _store(session, store_id, flow, clean)


def _by_default_types(base: dict[str, Any], flow: str, changes: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in base:
            raise ConfigError(f"unknown setting 'flows.{flow}.{key}'")
        expected = base[key]
        if isinstance(expected, bool) and not isinstance(value, bool):
            raise ConfigError(f"setting 'flows.{flow}.{key}' must be true or false")
        if isinstance(expected, int | float) and not isinstance(expected, bool):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"setting 'flows.{flow}.{key}' must be a number")
            if value < 0:
                raise ConfigError(f"setting 'flows.{flow}.{key}' must not be negative")
        if isinstance(expected, str) and not isinstance(value, str):
            raise ConfigError(f"setting 'flows.{flow}.{key}' must be text")
        clean[key] = value
    return clean


def _store(session: Session, store_id: int, flow: str, clean: dict[str, Any]) -> FlowSettings:
    row = session.scalar(select(FlowSettings).where(FlowSettings.store_id == store_id, FlowSettings.flow == flow))
    if row is None:
        row = FlowSettings(store_id=store_id, flow=flow, enabled=bool(clean.pop("enabled", True)), settings=clean)
        session.add(row)
    else:
        if "enabled" in clean:
            row.enabled = bool(clean.pop("enabled"))
        row.settings = {**(row.settings or {}), **clean}
    session.flush()
    return row
