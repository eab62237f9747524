"""Effective flow settings: each section's declared defaults, the deployment's overrides, then the store's choices.

The defaults and the validation come from plugin.flow_schemas (types, bounds, choices, messages); app.toml's
[flows.<section>] tables and AFTERCARE_FLOWS__<SECTION>__<KEY> are overrides plugin.config has already checked
against the same schemas. This module stays below the flows, which read their settings through it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.config import Config, ConfigError
from plugin.flow_schemas import schema_of
from plugin.models import FlowSettings
from plugin.settings_schema import SettingsSchema


def defaults(config: Config, flow: str) -> dict[str, Any]:
    """Return a section's defaults: its schema's, overlaid by the deployment's (empty for an undeclared section)."""
    schema = schema_of(flow)
    if schema is None:
        return {}
    return {**schema.defaults(), **config.section("flows").get(flow, {})}


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
           schema: SettingsSchema | None = None) -> FlowSettings:
    """Validate a store's overrides for a flow with its schema and store them; refused values raise ConfigError.

    ``schema`` defaults to the section's declared one (plugin.flow_schemas); an undeclared section is refused.
    """
    schema = schema or schema_of(flow)
    if schema is None:
        raise ConfigError(f"unknown flow '{flow}'")
    return _store(session, store_id, flow, schema.validate(flow, changes))


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
