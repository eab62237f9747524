"""The configuration errors, below every declaration so settings schemas and the loader can both raise them."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration problem; the message names the setting or variable to fix."""
