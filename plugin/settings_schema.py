"""Typed settings of a flow's section: each setting's type, default, bounds or choices, and its admin words.

Pure declarations (they import no flow, no database): plugin.flow_schemas lists every section's schema,
plugin.config validates app.toml's [flows.*] overrides with them, plugin.flow_settings reads defaults from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from plugin.config_errors import ConfigError

SettingType = Literal["bool", "int", "float", "text", "time", "choice", "list"]


@dataclass(frozen=True)
class Setting:
    """One typed setting of a flow: its default, bounds or choices, and the words the admin shows."""

    name: str
    type: SettingType
    default: Any
    label: str
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    message: str = ""

    def error(self) -> str:
        """Return the validation message shown when a value is refused."""
        if self.message:
            return self.message
        if self.type == "bool":
            return f"{self.label} must be on or off."
        if self.type == "choice":
            return f"{self.label} must be one of: {', '.join(self.choices)}."
        if self.type == "text":
            return f"{self.label} must be text."
        if self.type == "time":
            return f"{self.label} must be a time like 09:00"
        if self.type == "list":
            return f"{self.label} must be a list of codes."
        kind = "a whole number" if self.type == "int" else "a number"
        if self.min is not None and self.max is not None:
            return f"{self.label} must be {kind} from {_num(self.min)} to {_num(self.max)}."
        if self.min is not None:
            return f"{self.label} must be {kind} of at least {_num(self.min)}."
        return f"{self.label} must be {kind}."

    def check(self, value: Any) -> Any:
        """Return the value in its type when it is valid, else raise ConfigError with the setting's message."""
        if self.type == "bool":
            if not isinstance(value, bool):
                raise ConfigError(self.error())
            return value
        if self.type in ("int", "float"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(self.error())
            if self.type == "int" and float(value) != int(value):
                raise ConfigError(self.error())
            if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
                raise ConfigError(self.error())
            return int(value) if self.type == "int" else float(value)
        if self.type == "choice":
            if value not in self.choices:
                raise ConfigError(self.error())
            return value
        if self.type == "list":
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ConfigError(self.error())
            return list(value)
        if not isinstance(value, str) or (self.type == "time" and not _is_hhmm(value)):
            raise ConfigError(self.error())
        return value

    def parse(self, raw: str | None) -> Any:
        """Turn a form field (text, or None for an unticked box) into a checked value."""
        if self.type == "bool":
            return raw in ("on", "true", "1")
        text = (raw or "").strip()
        if self.type in ("int", "float"):
            try:
                number: Any = int(text) if self.type == "int" else float(text)
            except ValueError as exc:
                raise ConfigError(self.error()) from exc
            return self.check(number)
        if self.type == "list":
            return self.check([p.strip().upper() for p in text.replace(";", ",").split(",") if p.strip()])
        return self.check(text)


def _is_hhmm(value: str) -> bool:
    parts = value.split(":")
    return len(parts) == 2 and all(p.isdigit() for p in parts) and int(parts[0]) < 24 and int(parts[1]) < 60


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class SettingsSchema:
    """A flow's settings in order; ``enabled`` (on/off) is implied for every flow."""

    settings: tuple[Setting, ...]

    def __iter__(self) -> Any:
        return iter(self.settings)

    def get(self, name: str) -> Setting | None:
        """Return the declared setting of that name, if any."""
        return next((s for s in self.settings if s.name == name), None)

    def defaults(self) -> dict[str, Any]:
        """Return {name: default} of every setting."""
        return {s.name: s.default for s in self.settings}

    def validate(self, section: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Return the changes in their types; an unknown name or a refused value raises ConfigError."""
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "enabled":
                if not isinstance(value, bool):
                    raise ConfigError("Flow enabled must be on or off.")
                clean[name] = value
                continue
            setting = self.get(name)
            if setting is None:
                raise ConfigError(f"unknown setting 'flows.{section}.{name}'")
            clean[name] = setting.check(value)
        return clean

    def parse_form(self, form: Mapping[str, Any]) -> dict[str, Any]:
        """Turn a submitted settings form into checked values (an unticked box is False)."""
        changes: dict[str, Any] = {}
        for setting in self.settings:
            if setting.type == "bool" or setting.name in form:
                changes[setting.name] = setting.parse(form.get(setting.name))
        return changes

    def load(self, stored: Mapping[str, Any]) -> Mapping[str, Any]:
        """Return the effective settings, typed and read-only: every declared name, its stored value or default.

        A stored value of the wrong type (an old row, a hand-edited app.toml) falls back to the default rather
        than stopping the flow.
        """
        values: dict[str, Any] = {"enabled": bool(stored.get("enabled", True))}
        for setting in self.settings:
            raw = stored.get(setting.name, setting.default)
            try:
                values[setting.name] = setting.check(raw)
            except ConfigError:
                values[setting.name] = setting.default
        return MappingProxyType(values)
