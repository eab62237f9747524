"""What every command module shares: one-line operator errors and config loading (imports no command)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from sqlalchemy.exc import OperationalError

from plugin.config import Config, ConfigError, load_config

# The root group's settings, so `-h` works on every command as it does on `aftercare` itself.
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected operator mistakes into one line on stderr and a non-zero exit, no traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            raise click.ClickException(f"configuration: {exc}") from None
        except OperationalError as exc:
            reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc).splitlines()[0]
            raise click.ClickException(f"database unreachable: {reason}") from None

    return wrapper


def command_config(dev: bool = False) -> Config:
    """Load the configuration for a command (``dev``: development mode, local secrets generated if missing)."""
    return load_config({"app": {"development": True}} if dev else None)
