"""`aftercare stores add-amazon`: token never on argv, encrypted at rest, a real connection check."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from aftercare.cli import main
from plugin.crypto import Vault
from plugin.models import Merchant, Store
from plugin.secrets_store import get_credential
from sandbox.amazon import AmazonSandbox
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET_KEY, wipe

US, CA, DE = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1PA6795UKMFR9"


@pytest.fixture
def sandbox():
    """A small sandbox on the wall clock (the CLI uses the system clock)."""
    box = AmazonSandbox(seed=5, orders=60)
    box.start()
    yield box
    box.stop()


@pytest.fixture
def cli_env(sandbox, database, database_url, tmp_path):
    """The environment an operator would export, pointing at the sandbox."""
    env = {
        "AFTERCARE_DATABASE_URL": database_url, "AFTERCARE_SECRET_KEY": TEST_SECRET_KEY,
        "AFTERCARE_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY, "AFTERCARE_LWA_CLIENT_ID": sandbox.client_id,
        "AFTERCARE_LWA_CLIENT_SECRET": sandbox.client_secret, "AFTERCARE_AMAZON__ENDPOINT": sandbox.url,
        "AFTERCARE_AMAZON__LWA_TOKEN_URL": sandbox.lwa_token_url, "AFTERCARE_APP__INSTANCE_PATH": str(tmp_path),
        "AFTERCARE_SHOPIFY_API_KEY": "", "AFTERCARE_SHOPIFY__CLIENT_ID": '""',
        "AFTERCARE_AMAZON_REFRESH_TOKEN": "",
    }
    yield env
    wipe(database.engine)


def stores(database) -> list[Store]:
    with database.session() as session:
        return list(session.scalars(select(Store).order_by(Store.id)))


def add(cli_env, *args, token=None, prompt=None):
    env = dict(cli_env)
    if token is not None:
        env["AFTERCARE_AMAZON_REFRESH_TOKEN"] = token
    return CliRunner().invoke(main, ["stores", "add-amazon", *args], env=env, input=prompt)


def test_connects_a_seller_with_the_token_from_the_environment(cli_env, sandbox, database):
    seller = sandbox.seller(0)
    token = sandbox.issue_refresh_token(seller.seller_id)
    result = add(cli_env, "--seller-id", seller.seller_id, "--region", "na", "--marketplaces", "US,CA", token=token)
    assert result.exit_code == 0, result.output
    (store,) = stores(database)
    assert result.stdout.strip() == (f"connected Amazon seller {seller.seller_id} (na: US,CA) as store {store.id}; "
                                     "connection checked")
    assert (store.platform, store.external_id, store.region, store.marketplace_ids) == (
        "amazon", f"{seller.seller_id}:na", "na", [US, CA])
    assert token.encode() not in store.refresh_token_enc
    assert get_credential(store, Vault(TEST_ENCRYPTION_KEY), "refresh_token_enc") == token
    assert token not in result.output


def test_hidden_prompt_when_the_variable_is_absent_and_reconnect_updates(cli_env, sandbox, database):
    seller = sandbox.seller(1)
    first = sandbox.issue_refresh_token(seller.seller_id)
    result = add(cli_env, "--seller-id", seller.seller_id, "--region", "eu", "--marketplaces", "DE",
                 prompt=first + "\n")
    assert result.exit_code == 0, result.output
    assert first not in result.output  # hidden input is not echoed
    second = sandbox.issue_refresh_token(seller.seller_id)
    with database.session() as session:
        merchant_id = session.scalar(select(Merchant.id))
    result = add(cli_env, "--seller-id", seller.seller_id, "--region", "eu", "--marketplaces", "DE,FR",
                 "--merchant-id", str(merchant_id), token=second)
    assert result.exit_code == 0 and result.output.startswith("reconnected"), result.output
    (store,) = stores(database)
    assert store.marketplace_ids == [DE, "A13V1IB3VIYZZH"]
    assert get_credential(store, Vault(TEST_ENCRYPTION_KEY), "refresh_token_enc") == second


def test_a_refused_refresh_token_is_named_and_nothing_is_stored(cli_env, sandbox, database):
    result = add(cli_env, "--seller-id", sandbox.seller(0).seller_id, "--region", "na", "--marketplaces", "US",
                 token="Atzr|not-a-real-token")
    assert result.exit_code == 1
    assert "LWA refused the refresh token (invalid_grant)" in result.output
    assert stores(database) == []


def test_a_missing_role_is_named(cli_env, sandbox, database):
    seller = sandbox.seller(0)
    sandbox.withhold_role(seller.seller_id, "/orders/")
    result = add(cli_env, "--seller-id", seller.seller_id, "--region", "na", "--marketplaces", "US",
                 token=sandbox.issue_refresh_token(seller.seller_id))
    assert result.exit_code == 1
    assert "the seller has not granted the Inventory and Order Tracking role" in result.output
    assert stores(database) == []


def test_missing_app_credentials_name_the_variable(cli_env, sandbox, database):
    env = {**cli_env, "AFTERCARE_LWA_CLIENT_SECRET": ""}
    result = CliRunner().invoke(main, ["stores", "add-amazon", "--seller-id", "A1", "--region", "na",
                                       "--marketplaces", "US"], env={**env, "AFTERCARE_AMAZON_REFRESH_TOKEN": "x"})
    assert result.exit_code == 1 and "AFTERCARE_LWA_CLIENT_SECRET is not set" in result.output


def test_marketplaces_must_belong_to_the_region(cli_env, sandbox, database):
    result = add(cli_env, "--seller-id", "A1", "--region", "eu", "--marketplaces", "US", token="x")
    assert result.exit_code == 2 and "marketplace US is not in region eu" in result.output
    result = add(cli_env, "--seller-id", "A1", "--region", "na", "--marketplaces", "XX", token="x")
    assert result.exit_code == 2 and "unknown Amazon marketplace country code: XX" in result.output


def test_the_token_is_not_an_option():
    from plugin.commands.amazon import add_amazon

    assert [p.name for p in add_amazon.params] == ["seller_id", "region", "marketplaces", "merchant_id", "name",
                                                   "skip_check"]
