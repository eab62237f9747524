"""`aftercare check` against a ready deployment (every line OK, exit 0) and against each broken prerequisite,
each with its own line and a non-zero exit. Real parts: the Shopify and Amazon sandboxes over loopback HTTP,
the SMTP sandbox, the test database."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from aftercare.cli import main as cli
from base.clock import FrozenClock
from jobs.check import main
from jobs.schedule import acquire_lease
from plugin.crypto import Vault
from plugin.db import Database
from plugin.migrate import head_revision, upgrade
from plugin.models import Store
from plugin.secrets_store import set_credential
from sandbox.smtp import SmtpSandbox
from tests.amazon_env import NOW, start_env
from tests.conftest import (
    TEST_ENCRYPTION_KEY,
    TEST_SECRET_KEY,
    TEST_SHOPIFY_API_KEY,
    TEST_SHOPIFY_API_SECRET,
)
from tests.processes import ROOT
from tests.shopify_app_env import shopify_env


@dataclass
class World:
    """A deployment where everything a production start needs is in place."""

    environ: dict[str, str]
    clock: FrozenClock
    database: Database
    shop: str
    shopify_store_id: int
    amazon_store_id: int
    amazon_external_id: str
    smtp_port: int

    def check(self, **changes: str | None) -> tuple[int, list[str]]:
        """Run the check with some variables changed (None removes one); return exit code and lines."""
        environ = dict(self.environ)
        for name, value in changes.items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        lines: list[str] = []
        code = main(environ, self.clock, lines.append)
        return code, lines


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def world(database_url: str, database: Database, tmp_path: Path) -> Iterator[World]:
    """Start the sandboxes, install a Shopify store, connect an Amazon seller, hold the scheduler lease."""
    clock = FrozenClock(NOW)
    with SmtpSandbox() as smtp, shopify_env(database_url, tmp_path, clock, customers=2, orders=2) as shop_env:
        shopify_store_id = shop_env.install()
        amazon = start_env(database, tmp_path, now=NOW, orders=2)
        try:
            acquire_lease(database, "web-1:4242:abcd", clock.now(), 60)
            environ = {
                "AFTERCARE_CONFIG": str(ROOT / "app.toml"),
                "AFTERCARE_DATABASE_URL": database_url,
                "AFTERCARE_APP__INSTANCE_PATH": str(tmp_path / "instance"),
                "AFTERCARE_SECRET_KEY": TEST_SECRET_KEY,
                "AFTERCARE_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
                "AFTERCARE_SHOPIFY_API_KEY": TEST_SHOPIFY_API_KEY,
                "AFTERCARE_SHOPIFY_API_SECRET": TEST_SHOPIFY_API_SECRET,
                "AFTERCARE_SHOPIFY__ADMIN_BASE_URL": shop_env.sandbox.url,
                "AFTERCARE_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
                "AFTERCARE_LWA_CLIENT_ID": amazon.sandbox.client_id,
                "AFTERCARE_LWA_CLIENT_SECRET": amazon.sandbox.client_secret,
                "AFTERCARE_AMAZON__ENDPOINT": amazon.sandbox.url,
                "AFTERCARE_AMAZON__LWA_TOKEN_URL": amazon.sandbox.lwa_token_url,
            }
            yield World(environ, clock, database, shop_env.shop, shopify_store_id, amazon.store_id,
                        f"{amazon.seller.seller_id}:na", smtp.port)
        finally:
            amazon.sandbox.stop()


def find(lines: list[str], subject: str) -> str:
    """Return the one line about ``subject`` (after its OK or FAIL)."""
    [line] = [line for line in lines if line[5:].startswith(f"{subject}: ")]
    return line


def _ok_lines(world: World) -> list[str]:
    head = head_revision()
    cores = len(os.sched_getaffinity(0))
    return [
        "OK   secrets: AFTERCARE_SECRET_KEY, AFTERCARE_ENCRYPTION_KEY, AFTERCARE_SHOPIFY_API_KEY, "
        "AFTERCARE_SHOPIFY_API_SECRET set",
        f"OK   web: gunicorn {2 * cores + 1} workers x {2 * cores} threads, timeout 4 s, X-Forwarded-* from nobody",
        f"OK   database: reachable ({world.database.dialect}), at migration {head}",
        f"OK   smtp: 127.0.0.1:{world.smtp_port} answers (EHLO)",
        f"OK   shopify {world.shop}: access token answers (shop ",
        f"OK   amazon {world.amazon_external_id}: LWA refresh token works",
        "OK   scheduler: lease held by web-1:4242:abcd until 2026-03-02 12:01:00 UTC",
        "all checks passed",
    ]


def _replace(lines: list[str], expected: list[str], index: int, line: str) -> list[str]:
    """Return ``expected`` with line ``index`` replaced, the shop's name copied from the run (the sandbox's)."""
    shop_index = 4
    out = list(expected)
    assert lines[shop_index].startswith(out[shop_index])
    out[shop_index] = lines[shop_index]
    out[index] = line
    return out


def test_a_ready_deployment_passes_every_check(world: World) -> None:
    code, lines = world.check()
    expected = _ok_lines(world)
    assert lines[4].startswith(expected[4]) and lines[4].endswith("')")
    assert lines[:4] + lines[5:] == expected[:4] + expected[5:]
    assert code == 0


def test_a_missing_secret_is_named(world: World) -> None:
    code, lines = world.check(AFTERCARE_SECRET_KEY=None)
    assert lines == ["FAIL configuration: AFTERCARE_SECRET_KEY is not set (required; `aftercare serve --dev` "
                     "generates local development secrets instead)", "1 problem found"]
    assert code == 1


def test_the_command_line_prints_the_problem_and_exits_non_zero(world: World) -> None:
    env = {**world.environ, "AFTERCARE_ENCRYPTION_KEY": "not-a-fernet-key"}
    result = CliRunner().invoke(cli, ["check"], env=env)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "FAIL configuration: AFTERCARE_ENCRYPTION_KEY must be one or more comma-separated Fernet keys "
        "(generate one with `aftercare keys generate`)", "1 problem found"]


def test_metrics_enabled_without_its_token_is_named(world: World) -> None:
    code, lines = world.check(AFTERCARE_METRICS__ENABLED="true")
    assert lines[0] == "FAIL configuration: AFTERCARE_METRICS_TOKEN is not set (required when metrics.enabled is true)"
    assert code == 1


def test_a_web_timeout_at_shopifys_limit_is_named(world: World) -> None:
    code, lines = world.check(AFTERCARE_WEB__TIMEOUT_SECONDS="5")
    assert find(lines, "web") == ("FAIL web: setting 'web.timeout_seconds' must be between 1 and 4 (below Shopify's "
                                  "5 s webhook limit), got 5")
    assert lines[-1] == "1 problem found"
    assert code == 1


def test_an_unreachable_database(world: World) -> None:
    port = _free_port()
    code, lines = world.check(AFTERCARE_DATABASE_URL=f"postgresql+psycopg://aftercare@127.0.0.1:{port}/aftercare")
    assert find(lines, "database").startswith("FAIL database: unreachable (postgresql): connection failed: ")
    assert f'port {port} failed: Connection refused' in find(lines, "database")
    assert lines[4:] == ["FAIL stores: not checked: the database is not ready",
                         "FAIL scheduler: not checked: the database is not ready", "3 problems found"]
    assert code == 1


def test_a_database_not_migrated_and_one_behind(world: World, fresh_url: str) -> None:
    code, lines = world.check(AFTERCARE_DATABASE_URL=fresh_url)
    assert find(lines, "database") == ("FAIL database: not migrated (no schema version); run `aftercare db upgrade` "
                        f"(to {head_revision()})")
    assert code == 1
    upgrade(fresh_url, "0007_amazon")
    code, lines = world.check(AFTERCARE_DATABASE_URL=fresh_url)
    assert find(lines, "database") == (
        f"FAIL database: at migration 0007_amazon, this release needs {head_revision()}; run `aftercare db upgrade`")
    assert code == 1


def test_smtp_not_set_and_not_reachable(world: World) -> None:
    code, lines = world.check(AFTERCARE_SMTP_URL=None)
    expected = _replace(lines, _ok_lines(world), 3, "FAIL smtp: AFTERCARE_SMTP_URL is not set: no email can be sent")
    assert lines == [*expected[:-1], "1 problem found"]
    assert code == 1
    port = _free_port()
    code, lines = world.check(AFTERCARE_SMTP_URL=f"smtp://127.0.0.1:{port}")
    assert find(lines, "smtp").startswith(f"FAIL smtp: 127.0.0.1:{port}: ")
    assert "refused" in find(lines, "smtp").lower()
    assert code == 1


def test_a_shopify_token_the_shop_refuses(world: World) -> None:
    with world.database.session() as session:
        store = session.get(Store, world.shopify_store_id)
        set_credential(store, Vault(TEST_ENCRYPTION_KEY), "access_token_enc", "shpat_revoked_elsewhere")
    code, lines = world.check()
    assert find(lines, f"shopify {world.shop}") == (
        f"FAIL shopify {world.shop}: Shopify refused the access token (401); the merchant must reinstall the app")
    assert lines[-1] == "1 problem found"
    assert code == 1


def test_a_shopify_store_waiting_for_reinstall(world: World) -> None:
    with world.database.session() as session:
        session.get(Store, world.shopify_store_id).status = "reinstall_needed"
    code, lines = world.check()
    assert find(lines, f"shopify {world.shop}") == (
        f"FAIL shopify {world.shop}: store is reinstall_needed: the merchant must open the app to reinstall it")
    assert code == 1


def test_an_amazon_refresh_token_lwa_refuses(world: World) -> None:
    with world.database.session() as session:
        store = session.get(Store, world.amazon_store_id)
        set_credential(store, Vault(TEST_ENCRYPTION_KEY), "refresh_token_enc", "Atzr|not-issued-by-lwa")
    code, lines = world.check()
    assert find(lines, f"amazon {world.amazon_external_id}") == (
        f"FAIL amazon {world.amazon_external_id}: LWA refused the refresh token (invalid_grant); "
        "reconnect the seller (`aftercare stores add-amazon`)")
    assert lines[-1] == "1 problem found"
    assert code == 1


def test_wrong_or_missing_lwa_app_credentials(world: World) -> None:
    code, lines = world.check(AFTERCARE_LWA_CLIENT_SECRET="wrong-secret")
    assert find(lines, f"amazon {world.amazon_external_id}") == (
        f"FAIL amazon {world.amazon_external_id}: LWA refused the app credentials (invalid_client): "
        "check AFTERCARE_LWA_CLIENT_ID and AFTERCARE_LWA_CLIENT_SECRET")
    assert code == 1
    code, lines = world.check(AFTERCARE_LWA_CLIENT_ID=None)
    assert find(lines, "amazon") == "FAIL amazon: AFTERCARE_LWA_CLIENT_ID not set (1 seller(s) connected)"
    assert code == 1


def test_no_scheduler_holding_the_lease(world: World) -> None:
    world.clock.advance(seconds=61)
    code, lines = world.check()
    assert find(lines, "scheduler") == (
        "FAIL scheduler: no scheduler holds the lease (last holder web-1:4242:abcd, expired "
        "2026-03-02 12:01:00 UTC); start `aftercare scheduler`")
    assert code == 1
    world.clock.set(NOW)  # the Shopify token stays as fresh as at install for the other tests' clock


def test_no_scheduler_ever_started(world: World) -> None:
    from sqlalchemy import delete

    from plugin.models import SchedulerLease

    with world.database.session() as session:
        session.execute(delete(SchedulerLease))
    code, lines = world.check()
    assert find(lines, "scheduler") == (
        "FAIL scheduler: no scheduler has ever held the lease; start `aftercare scheduler`")
    assert code == 1


def test_development_secrets_are_a_problem_in_production(world: World, tmp_path: Path) -> None:
    code, lines = world.check(AFTERCARE_SECRET_KEY=None, AFTERCARE_ENCRYPTION_KEY=None, AFTERCARE_ENV="development")
    assert lines[0] == ("FAIL secrets: development secrets generated in the instance folder are in use "
                        "(AFTERCARE_SECRET_KEY, AFTERCARE_ENCRYPTION_KEY); set them in the environment")
    assert code == 1
