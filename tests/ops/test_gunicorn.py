"""The shipped gunicorn configuration: its values follow the cores and the proxy setting, and a real gunicorn
started with it serves the embedded admin and a signed webhook, then stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from plugin.config import ConfigError, load_config
from plugin.crypto import Vault
from plugin.db import Database
from plugin.gunicorn_settings import settings
from plugin.models import WebhookEvent
from sandbox.shopify import mint_session_token
from tests.admin.seed import SHOP_A, seed_tenant
from tests.conftest import (
    TEST_ENCRYPTION_KEY,
    TEST_SECRET_KEY,
    TEST_SHOPIFY_API_KEY,
    TEST_SHOPIFY_API_SECRET,
    make_settings,
    wipe,
)
from tests.processes import ROOT, project_env
from tests.shopify_app_env import body_of, signed_headers


def _config(tmp_path: Path, database_url: str, **extra: object):
    return load_config(make_settings(database_url, tmp_path / "instance", **extra), environ={})


def test_workers_and_threads_follow_the_cores_and_timeouts_stay_below_shopifys_limit(tmp_path, database_url) -> None:
    shipped = settings(_config(tmp_path, database_url), core_count=2)
    assert (shipped["workers"], shipped["threads"], shipped["worker_class"]) == (5, 4, "gthread")
    assert settings(_config(tmp_path, database_url), core_count=8)["workers"] == 17
    assert shipped["timeout"] == shipped["graceful_timeout"] == 4 and shipped["keepalive"] == 2
    assert shipped["bind"] == ["127.0.0.1:8000"]
    fixed = settings(_config(tmp_path, database_url, web={"workers": 3, "threads": 1}), core_count=2)
    assert (fixed["workers"], fixed["threads"]) == (3, 1)
    with pytest.raises(ConfigError, match=r"setting 'web.timeout_seconds' must be between 1 and 4 .*got 5"):
        settings(_config(tmp_path, database_url, web={"timeout_seconds": 5}), core_count=2)


def test_forwarded_headers_are_trusted_only_with_trusted_proxies(tmp_path, database_url) -> None:
    assert settings(_config(tmp_path, database_url), 2)["forwarded_allow_ips"] == ""
    behind = _config(tmp_path, database_url, app={"trusted_proxies": 1}, web={"proxy_addresses": ["10.0.0.5"]})
    assert settings(behind, 2)["forwarded_allow_ips"] == "10.0.0.5"
    # The proxy addresses alone change nothing while the app trusts no proxy.
    alone = _config(tmp_path, database_url, web={"proxy_addresses": ["10.0.0.5", "10.0.0.6"]})
    assert settings(alone, 2)["forwarded_allow_ips"] == ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_ready(proc: subprocess.Popen, url: str, log: Path, deadline_s: float = 120.0) -> None:
    """Poll /healthz; between polls wait on the process itself (an early exit fails at once)."""
    start = datetime.now(UTC)
    while (datetime.now(UTC) - start).total_seconds() < deadline_s:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        try:
            proc.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"gunicorn exited with {proc.returncode}: {log.read_text()[-3000:]}")
    raise AssertionError("gunicorn did not answer /healthz in time")


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.fixture
def gunicorn(database_url: str, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start gunicorn with the shipped configuration on a free loopback port; stop it with SIGTERM."""
    port = _free_port()
    env = project_env({
        "PATH": "/usr/bin:/bin",
        "AFTERCARE_CONFIG": str(ROOT / "app.toml"),
        "AFTERCARE_DATABASE_URL": database_url,
        "AFTERCARE_SECRET_KEY": TEST_SECRET_KEY,
        "AFTERCARE_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "AFTERCARE_SHOPIFY_API_KEY": TEST_SHOPIFY_API_KEY,
        "AFTERCARE_SHOPIFY_API_SECRET": TEST_SHOPIFY_API_SECRET,
        "AFTERCARE_APP__INSTANCE_PATH": str(tmp_path / "instance"),
        "AFTERCARE_WEB__BIND": f'["127.0.0.1:{port}"]',
        # Two workers rather than 2 x cores + 1: the suite shares its cores; the rule itself is tested above.
        "AFTERCARE_WEB__WORKERS": "2",
    })
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as sink:
        # A file, not a pipe: a pipe nobody reads would block gunicorn once full.
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:plugin.gunicorn_conf",
                                 "plugin:create_app()"], cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(proc, url, log)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        database = Database(database_url)
        wipe(database.engine)
        database.dispose()


def test_gunicorn_serves_the_admin_and_a_signed_webhook(gunicorn, database_url: str, tmp_path: Path) -> None:
    url, proc = gunicorn
    assert len(_children(proc.pid)) == 2  # the configured workers
    database = Database(database_url)
    now = datetime.now(UTC)  # gunicorn's app reads the system clock
    with database.session() as session:
        tenant = seed_tenant(session, Vault(TEST_ENCRYPTION_KEY), now, SHOP_A)

    token = mint_session_token(SHOP_A, TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET, now)
    page = httpx.get(url + "/admin/", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert page.status_code == 200
    # The embedded admin's overview, in App Home form (s-app-nav for the admin's sidebar).
    assert "<s-app-nav" in page.text and "Overview" in page.text
    anonymous = httpx.get(url + "/admin/", timeout=10)
    assert anonymous.status_code == 302 and "/admin/login" in anonymous.headers["Location"]

    body = body_of({"id": 4501, "name": "#1001"})
    headers = signed_headers(body, "orders/create", shop=SHOP_A, webhook_id="wh-gunicorn-1")
    answer = httpx.post(url + "/webhooks", content=body, headers=headers, timeout=10)
    assert (answer.status_code, answer.json()) == (200, {"status": "stored"})
    forged = signed_headers(body, "orders/create", shop=SHOP_A, secret="not-the-secret", webhook_id="wh-forged")
    assert httpx.post(url + "/webhooks", content=body, headers=forged, timeout=10).status_code == 401
    with database.session() as session:
        events = session.execute(select(WebhookEvent.webhook_id, WebhookEvent.store_id, WebhookEvent.topic)).all()
    assert events == [("wh-gunicorn-1", tenant.store_id, "orders/create")]
    database.dispose()

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    log = (tmp_path / "gunicorn.log").read_text()
    # The access log of the shipped configuration: one line per request, the forged webhook's 401 included.
    assert '"GET /admin/ HTTP/1.1" 200' in log and '"POST /webhooks HTTP/1.1" 401' in log
    assert token not in log
