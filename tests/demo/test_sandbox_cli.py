"""`aftercare sandbox shopify|amazon`: the commands serve the sandboxes over HTTP with the given options."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.processes import AFTERCARE

ROOT = Path(__file__).resolve().parents[2]
LWA_ID = "amzn1.application-oa2-client.cli-test"
LWA_SECRET = "amzn1.oa2-cs.v1.cli-test-secret"  # noqa: S105 - a sandbox credential


@contextmanager
def command(*args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """Run `aftercare ...` in a subprocess; terminate it (by its own pid) afterwards."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AFTERCARE_")}
    process = subprocess.Popen([*AFTERCARE, *args], cwd=ROOT,
                               env={**base, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_shopify_sandbox_command_serves_the_seeded_store():
    with command("sandbox", "shopify", "--port", "0", "--seed", "3", "--customers", "12", "--orders", "30") as proc:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        match = re.search(r"Shopify sandbox on (http://127\.0\.0\.1:\d+) .*customers=12 orders=30 seed=3", line)
        assert match, line
        state = requests.get(f"{match.group(1)}/__sandbox/state", timeout=10)
        assert state.status_code == 200


def test_amazon_sandbox_command_uses_the_configured_lwa_app():
    env = {"AFTERCARE_LWA_CLIENT_ID": LWA_ID, "AFTERCARE_LWA_CLIENT_SECRET": LWA_SECRET}
    with command("sandbox", "amazon", "--port", "0", "--seed", "7", "--orders", "40", env=env) as proc:
        lines = [proc.stdout.readline() for _ in range(4)]  # type: ignore[union-attr]
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", lines[0]).group(1)  # type: ignore[union-attr]
        assert lines[1].split()[-1] == LWA_ID and lines[2].split()[-1] == LWA_SECRET
        refresh = lines[3].split("refresh token: ")[1].strip()
        answer = requests.post(f"{url}/auth/o2/token", timeout=10, data={
            "grant_type": "refresh_token", "refresh_token": refresh, "client_id": LWA_ID,
            "client_secret": LWA_SECRET})
        assert answer.status_code == 200 and answer.json()["access_token"]
