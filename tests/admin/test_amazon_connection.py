"""The Settings page connects an Amazon seller after a real connection check against the Amazon sandbox."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from plugin import create_app
from plugin.models import Store
from plugin.secrets_store import get_credential
from sandbox.amazon import AmazonSandbox
from tests.admin.seed import SHOP_A, seed_tenant
from tests.conftest import test_settings, wipe

US, CA = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"


@pytest.fixture
def amazon_app(database_url, tmp_path, clock):
    """Our app configured with the sandbox's LWA app and endpoints, and merchant A seeded."""
    box = AmazonSandbox(seed=5, orders=20, clock=clock)
    box.start()
    settings = test_settings(database_url, tmp_path / "instance",
                             amazon={"endpoint": box.url, "lwa_token_url": box.lwa_token_url,
                                     "request_timeout_seconds": 10.0})
    settings["secrets"] = {**settings["secrets"], "lwa_client_id": box.client_id,
                           "lwa_client_secret": box.client_secret}
    app = create_app(settings, clock=clock)
    with app.extensions["aftercare.db"].session() as session:
        tenant = seed_tenant(session, app.extensions["aftercare.vault"], clock.now(), SHOP_A)
    yield app, box, tenant
    box.stop()
    wipe(app.extensions["aftercare.db"].engine)
    app.extensions["aftercare.db"].dispose()


def test_connecting_a_seller_stores_the_encrypted_token_under_the_merchant(amazon_app, token):
    app, box, tenant = amazon_app
    seller = box.seller(0)
    refresh = box.issue_refresh_token(seller.seller_id)
    client = app.test_client()
    form = {"seller_id": seller.seller_id.lower(), "region": "na", "marketplaces": "us, ca",
            "refresh_token": refresh, "name": "Amazon NA"}
    answer = client.post("/admin/settings/amazon", data=form,
                         headers={"Authorization": f"Bearer {token()}", "Accept": "application/json"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    with app.extensions["aftercare.db"].session() as session:
        store = session.scalar(select(Store).where(Store.platform == "amazon"))
        assert (store.merchant_id, store.external_id, store.marketplace_ids, store.name, store.country) == \
            (tenant.merchant_id, f"{seller.seller_id}:na", [US, CA], "Amazon NA", "US")
        assert refresh.encode() not in store.refresh_token_enc
        assert get_credential(store, app.extensions["aftercare.vault"], "refresh_token_enc") == refresh
    # A token Amazon does not know is refused and nothing is stored.
    bad = client.post("/admin/settings/amazon", data={**form, "seller_id": box.seller(1).seller_id,
                                                      "refresh_token": "Atzr|not-issued"},
                      headers={"Authorization": f"Bearer {token()}", "Accept": "application/json"})
    assert bad.status_code == 400 and "Amazon refused the connection" in bad.get_json()["error"]
    with app.extensions["aftercare.db"].session() as session:
        assert session.scalar(select(Store).where(Store.external_id == f"{box.seller(1).seller_id}:na")) is None
