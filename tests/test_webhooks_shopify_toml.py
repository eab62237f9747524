"""`aftercare shopify-toml` prints a Shopify CLI shopify.app.toml that matches app.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

from click.testing import CliRunner
from cryptography.fernet import Fernet

from aftercare.cli import main

APP_TOML = """
[shopify]
client_id = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
app_name = "Aftercare \\"Retention\\""
application_url = "https://aftercare.example.com/"
scopes = ["read_orders", "read_customers", "write_discounts"]
redirect_path = "/auth/callback"
embedded = false
api_version = "2025-01"
webhook_path = "/hooks/shopify"
webhook_topics = ["orders/create", "app/uninstalled"]
compliance_topics = ["customers/data_request", "customers/redact", "shop/redact"]
"""


def test_shopify_toml_is_valid_and_complete(tmp_path: Path) -> None:
    config = tmp_path / "app.toml"
    config.write_text(APP_TOML)
    env = {"AFTERCARE_CONFIG": str(config), "AFTERCARE_SECRET_KEY": "k" * 32,
           "AFTERCARE_ENCRYPTION_KEY": Fernet.generate_key().decode(),
           "AFTERCARE_SHOPIFY_API_SECRET": "s" * 32}
    result = CliRunner().invoke(main, ["shopify-toml"], env=env)
    assert result.exit_code == 0, result.output
    parsed = tomllib.loads(result.output)
    assert parsed == {
        "client_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "name": 'Aftercare "Retention"',
        "application_url": "https://aftercare.example.com",
        "embedded": False,
        "access_scopes": {"scopes": "read_orders,read_customers,write_discounts"},
        "auth": {"redirect_urls": ["https://aftercare.example.com/auth/callback"]},
        "webhooks": {
            "api_version": "2025-01",
            "subscriptions": [
                {"topics": ["orders/create", "app/uninstalled"],
                 "uri": "https://aftercare.example.com/hooks/shopify"},
                {"compliance_topics": ["customers/data_request", "customers/redact", "shop/redact"],
                 "uri": "https://aftercare.example.com/hooks/shopify"},
            ],
        },
    }


def test_default_configuration_subscribes_every_handled_topic(tmp_path: Path) -> None:
    env = {"AFTERCARE_CONFIG": str(tmp_path / "empty.toml"), "AFTERCARE_SECRET_KEY": "k" * 32,
           "AFTERCARE_ENCRYPTION_KEY": Fernet.generate_key().decode(), "AFTERCARE_SHOPIFY_API_KEY": "client-key",
           "AFTERCARE_SHOPIFY_API_SECRET": "s" * 32}
    (tmp_path / "empty.toml").write_text("")
    parsed = tomllib.loads(CliRunner().invoke(main, ["shopify-toml"], env=env).output)
    assert parsed["client_id"] == "client-key"
    assert parsed["embedded"] is True
    [regular, compliance] = parsed["webhooks"]["subscriptions"]
    assert regular["topics"] == ["orders/create", "orders/updated", "orders/fulfilled", "orders/cancelled",
                                 "fulfillments/create", "fulfillments/update", "refunds/create", "customers/update",
                                 "app/uninstalled",
                                 "bulk_operations/finish", "fulfillment_events/create", "orders/delete",
                                 "products/delete", "customers/delete", "customers_email_marketing_consent/update"]
    assert compliance["compliance_topics"] == ["customers/data_request", "customers/redact", "shop/redact"]
    assert regular["uri"] == compliance["uri"] == "http://127.0.0.1:8000/webhooks"
