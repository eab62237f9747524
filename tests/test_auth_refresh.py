"""Expiring offline tokens: transparent refresh with rotation, revocation, transient failures (sandbox over HTTP)."""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from base.clock import FrozenClock
from plugin.auth.install import fetch_shop_details
from plugin.auth.tokens import ReinstallNeeded, get_access_token
from plugin.logs import EventFormatter
from plugin.models import Store
from plugin.secrets_store import get_credential
from tests.conftest import TEST_SHOPIFY_API_KEY
from tests.shopify_app_env import ShopifyEnv, shopify_env


def _tokens(env: ShopifyEnv, store_id: int) -> tuple[str | None, str | None, Store]:
    with env.app.extensions["aftercare.db"].session() as session:
        store = session.get(Store, store_id)
        vault = env.app.extensions["aftercare.vault"]
        return (get_credential(store, vault, "access_token_enc"), get_credential(store, vault, "refresh_token_enc"),
                store)


def _token_for_job(env: ShopifyEnv, store_id: int) -> str:
    ctx = env.ctx()
    with ctx.database.session() as session:
        return get_access_token(session, session.get(Store, store_id), ctx)


def test_token_with_time_left_is_used_as_is(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        access, refresh, _ = _tokens(env, store_id)
        clock.advance(minutes=54)  # 6 minutes left
        assert _token_for_job(env, store_id) == access
        assert _tokens(env, store_id)[:2] == (access, refresh)


def test_expired_token_is_refreshed_without_the_caller_noticing(database_url: str, tmp_path: Path,
                                                                 clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        access, refresh, _ = _tokens(env, store_id)
        now = clock.advance(hours=2)  # well past the one-hour expiry
        assert env.sandbox.tokens.lookup(access, now) is None

        token = _token_for_job(env, store_id)
        assert token != access
        # The next call works: the sandbox accepts the new token for the shop query.
        assert fetch_shop_details(env.app.config["AFTERCARE"], env.shop, token).name == env.sandbox.store.shop.name
        new_access, new_refresh, store = _tokens(env, store_id)
        assert new_access == token
        assert new_refresh not in (None, refresh)  # rotated and stored
        assert store.access_token_expires_at == now + timedelta(seconds=3600)
        assert store.refresh_token_expires_at == now + timedelta(days=90)
        assert store.status == "active"

        # Within the refresh margin (under 5 minutes left) the next caller refreshes again, with the new token.
        clock.advance(minutes=56)
        third = _token_for_job(env, store_id)
        assert third not in (access, token)
        assert env.sandbox.tokens.lookup(third, clock.now()) is not None


def test_rotated_token_survives_a_job_that_fails_afterwards(database_url: str, tmp_path: Path,
                                                            clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        _, refresh, _ = _tokens(env, store_id)
        clock.advance(hours=2)
        ctx = env.ctx()
        with pytest.raises(RuntimeError, match="job failed after getting its token"):
            with ctx.database.session() as session:
                token = get_access_token(session, session.get(Store, store_id), ctx)
                raise RuntimeError("job failed after getting its token")
        stored_access, stored_refresh, _ = _tokens(env, store_id)
        assert stored_access == token and stored_refresh != refresh


def test_revoked_grant_marks_the_store_reinstall_needed(database_url: str, tmp_path: Path,
                                                        clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        env.sandbox.revoke(TEST_SHOPIFY_API_KEY, notify=False)  # revoked without telling us
        clock.advance(hours=2)
        lines = io.StringIO()
        handler = logging.StreamHandler(lines)
        handler.setFormatter(EventFormatter())
        logger = logging.getLogger("aftercare.auth")
        logger.addHandler(handler)
        try:
            ctx = env.ctx()
            with pytest.raises(ReinstallNeeded):
                # The job's own transaction rolls back; the store's new status must persist anyway.
                with ctx.database.session() as session:
                    get_access_token(session, session.get(Store, store_id), ctx)
        finally:
            logger.removeHandler(handler)
        access, refresh, store = _tokens(env, store_id)
        assert (store.status, access, refresh) == ("reinstall_needed", None, None)
        assert store.is_sending_allowed is False
        warning = [line for line in lines.getvalue().splitlines() if "needs reinstall" in line]
        assert len(warning) == 1 and f"store_id={store_id}" in warning[0] and "reason=invalid_grant" in warning[0]
        # Its jobs stop: asking again fails at once, without calling Shopify.
        with pytest.raises(ReinstallNeeded, match="store is reinstall_needed"):
            _token_for_job(env, store_id)
        # Opening the app again (token exchange) brings the store back.
        env.sandbox.install(TEST_SHOPIFY_API_KEY)
        assert env.install() == store_id
        with env.app.extensions["aftercare.db"].session() as session:
            assert session.scalar(select(Store.status).where(Store.id == store_id)) == "active"


def test_transient_refresh_failure_keeps_the_still_valid_token(database_url: str, tmp_path: Path,
                                                               clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        access, refresh, _ = _tokens(env, store_id)
        clock.advance(minutes=57)  # 3 minutes left: refresh is due but the token still works
        env.sandbox.set_faults(1.0, kinds=["503"])
        assert _token_for_job(env, store_id) == access
        env.sandbox.set_faults(0.0)
        assert _tokens(env, store_id)[:2] == (access, refresh)
        assert _tokens(env, store_id)[2].status == "active"


def test_concurrent_callers_refresh_once(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    import threading

    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        clock.advance(hours=2)
        results: list[str] = []
        errors: list[BaseException] = []
        start = threading.Barrier(4)

        def worker() -> None:
            start.wait(timeout=10)
            try:
                results.append(_token_for_job(env, store_id))
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        # One refresh: every caller got the same new token, and it is the stored one.
        assert len(results) == 4 and len(set(results)) == 1
        assert _tokens(env, store_id)[0] == results[0]


def test_sync_of_a_revoked_store_stops_quietly(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    from plugin.sync.shopify_run import sync_shopify_store

    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        env.sandbox.revoke(TEST_SHOPIFY_API_KEY, notify=False)
        clock.advance(hours=2)
        assert sync_shopify_store(env.ctx(), store_id) == {"status": "reinstall_needed"}
        _access, _refresh, store = _tokens(env, store_id)
        assert store.status == "reinstall_needed"
