"""Make sure Debian's chromium is installed for the browser tests (Playwright drives it; no browser download).

Run as ``python -m tests.install_browser``; as root it installs the package with apt-get, otherwise it
says what to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str | None:
    """Return the path of an installed chromium, if any."""
    for path in CHROMIUM_PATHS:
        if os.path.exists(path):
            return path
    return shutil.which("chromium")


def main() -> int:
    """Install chromium when missing; return a process exit code."""
    if chromium_path():
        return 0
    if os.geteuid() != 0:
        print("browser tests need Debian's chromium: run `sudo apt-get install -y chromium`", file=sys.stderr)
        return 1
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)  # noqa: S607 - system package manager
    subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True, env=env)  # noqa: S607
    return 0 if chromium_path() else 1


if __name__ == "__main__":
    sys.exit(main())
