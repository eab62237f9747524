"""Helpers for tests that run a command in a child process and stop it the way a person would."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The command line of this checkout (`python -m aftercare`): the installed script may belong to another checkout.
AFTERCARE = (sys.executable, "-m", "aftercare")


def like_a_terminal() -> None:
    """Give the child the default SIGINT disposition, as a terminal's foreground command has (a preexec_fn).

    A shell that runs the suite in the background (CI, `nohup ... &`) starts its commands with SIGINT
    ignored, and Python then never raises KeyboardInterrupt; the tests send SIGINT to play Ctrl-C.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def project_env(env: dict[str, str]) -> dict[str, str]:
    """Return ``env`` with this checkout on PYTHONPATH, so a child started with a bare environment finds it."""
    return {**env, "PYTHONPATH": str(ROOT)}
