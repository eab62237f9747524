"""`aftercare sync [--store ID]` runs the sync job from the command line against the configured Shopify."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import func, select

from aftercare.cli import main
from plugin import sync
from plugin.models import Order
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET, wipe
from tests.shopify_sync_harness import make_harness


def test_sync_command_syncs_one_store_and_reports_counts(database, tmp_path):
    h = make_harness(database, tmp_path, customers=10, orders=30)
    try:
        with database.session() as session:
            # An earlier backfill left cursors: this run reads changes page by page.
            for stream in ("products", "customers", "orders"):
                sync.mark_sync_success(session, h.store_id, stream, cursor="2000-01-01T00:00:00+00:00",
                                       now=h.clock.now())
        env = {"AFTERCARE_DATABASE_URL": database.url, "AFTERCARE_SECRET_KEY": "k" * 32,
               "AFTERCARE_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY, "AFTERCARE_SHOPIFY_API_KEY": TEST_SHOPIFY_API_KEY,
               "AFTERCARE_SHOPIFY_API_SECRET": TEST_SHOPIFY_API_SECRET,
               "AFTERCARE_SHOPIFY__ADMIN_BASE_URL": h.sandbox.url, "AFTERCARE_CONFIG": str(tmp_path / "none.toml")}
        (tmp_path / "none.toml").write_text("")
        result = CliRunner().invoke(main, ["sync", "--store", str(h.store_id)], env=env)
        assert result.exit_code == 0, result.output
        assert f"sync store {h.store_id}: status=ok" in result.output
        assert "orders.records=30" in result.output and "throttled=0" in result.output
        with database.session() as session:
            assert session.scalar(select(func.count()).select_from(Order)) == 30
        missing = CliRunner().invoke(main, ["sync", "--store", "999999"], env=env)
        assert missing.exit_code == 1 and "store 999999 does not exist" in missing.output
    finally:
        h.stop()
        wipe(database.engine)
