"""Effective flow settings: app.toml's [flows.<name>] defaults overlaid by the store's own choices."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.config import Config, ConfigError
from plugin.models import FlowSettings


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


def update(session: Session, config: Config, store_id: int, flow: str, changes: dict[str, Any]) -> FlowSettings:
    """Validate and store a store's overrides for a flow; unknown keys and wrong types raise ConfigError."""
    base = defaults(config, flow)
    if not base:
        raise ConfigError(f"unknown flow '{flow}'")
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
