"""Configuration: precedence, errors that name the setting or variable, development secrets."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from plugin.config import ConfigError, load_config

KEY = Fernet.generate_key().decode()
BASE_ENV = {"AFTERCARE_SECRET_KEY": "s" * 32, "AFTERCARE_ENCRYPTION_KEY": KEY}


@pytest.fixture(autouse=True)
def _no_app_toml(tmp_path, monkeypatch):
    # Run in an empty folder so the repository's app.toml does not leak into these tests.
    monkeypatch.chdir(tmp_path)


def test_missing_secret_key_names_the_variable():
    with pytest.raises(ConfigError, match="AFTERCARE_SECRET_KEY"):
        load_config(environ={"AFTERCARE_ENCRYPTION_KEY": KEY})


def test_missing_encryption_key_names_the_variable():
    with pytest.raises(ConfigError, match="AFTERCARE_ENCRYPTION_KEY is not set"):
        load_config(environ={"AFTERCARE_SECRET_KEY": "s" * 32})


def test_invalid_encryption_key_names_the_variable():
    with pytest.raises(ConfigError, match="AFTERCARE_ENCRYPTION_KEY must be one or more"):
        load_config(environ={**BASE_ENV, "AFTERCARE_ENCRYPTION_KEY": "not-a-key"})


def test_shopify_secret_required_once_shopify_is_configured():
    with pytest.raises(ConfigError, match="AFTERCARE_SHOPIFY_API_SECRET"):
        load_config(environ={**BASE_ENV, "AFTERCARE_SHOPIFY_API_KEY": "client"})
    cfg = load_config(environ={**BASE_ENV, "AFTERCARE_SHOPIFY_API_KEY": "client",
                               "AFTERCARE_SHOPIFY_API_SECRET": "secret"})
    assert cfg.shopify_configured
    assert not load_config(environ=BASE_ENV).shopify_configured


def test_precedence_defaults_toml_env_override(tmp_path):
    toml = tmp_path / "custom.toml"
    toml.write_text('[shopify]\napi_version = "2024-10"\nrequest_timeout_seconds = 12\n'
                    '[flows.review_request]\ndelay_days = 9\n')
    env = {**BASE_ENV, "AFTERCARE_CONFIG": str(toml)}
    cfg = load_config(environ=env)
    assert cfg.get("shopify.api_version") == "2024-10"
    assert cfg.get("shopify.request_timeout_seconds") == 12.0
    assert cfg.get("flows.review_request.delay_days") == 9
    assert cfg.get("flows.review_request.reminder_delay_days") == 7  # untouched default
    env["AFTERCARE_SHOPIFY__API_VERSION"] = "2025-01"
    env["AFTERCARE_FLOWS__REVIEW_REQUEST__DELAY_DAYS"] = "5"
    cfg = load_config(environ=env)
    assert cfg.get("shopify.api_version") == "2025-01"
    assert cfg.get("flows.review_request.delay_days") == 5
    cfg = load_config({"flows": {"review_request": {"delay_days": 3}}}, environ=env)
    assert cfg.get("flows.review_request.delay_days") == 3
    assert cfg.sources == ("defaults", str(toml), "environment", "override")


def test_wrong_type_names_the_setting(tmp_path):
    toml = tmp_path / "bad.toml"
    toml.write_text('[database]\npool_size = "five"\n')
    with pytest.raises(ConfigError, match="'database.pool_size' must be an integer"):
        load_config(environ={**BASE_ENV, "AFTERCARE_CONFIG": str(toml)})


def test_unknown_setting_is_named():
    with pytest.raises(ConfigError, match="unknown setting 'shopify.api_vesion'"):
        load_config(environ={**BASE_ENV, "AFTERCARE_SHOPIFY__API_VESION": "2025-01"})


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does-not-exist.toml"):
        load_config(environ={**BASE_ENV, "AFTERCARE_CONFIG": str(tmp_path / "does-not-exist.toml")})


def test_invalid_toml_is_named(tmp_path):
    toml = tmp_path / "broken.toml"
    toml.write_text("[app\n")
    with pytest.raises(ConfigError, match="broken.toml is not valid TOML"):
        load_config(environ={**BASE_ENV, "AFTERCARE_CONFIG": str(toml)})


def test_database_url_defaults_to_sqlite_in_instance_folder(tmp_path):
    cfg = load_config({"app": {"instance_path": str(tmp_path / "inst")}}, environ=BASE_ENV)
    assert cfg.database_url == f"sqlite:///{tmp_path / 'inst' / 'aftercare.sqlite'}"
    cfg = load_config(environ={**BASE_ENV, "AFTERCARE_DATABASE_URL": "postgresql://u@h/db"})
    assert cfg.database_url == "postgresql+psycopg://u@h/db"
    with pytest.raises(ConfigError, match="AFTERCARE_DATABASE_URL"):
        load_config(environ={**BASE_ENV, "AFTERCARE_DATABASE_URL": "mysql://u@h/db"})


def test_development_mode_generates_and_reuses_local_secrets(tmp_path):
    inst = tmp_path / "inst"
    first = load_config({"app": {"instance_path": str(inst), "development": True}}, environ={})
    assert set(first.generated_secrets) == {"AFTERCARE_SECRET_KEY", "AFTERCARE_ENCRYPTION_KEY",
                                            "AFTERCARE_SHOPIFY_API_KEY", "AFTERCARE_SHOPIFY_API_SECRET"}
    secrets_file = inst / "dev-secrets.toml"
    assert secrets_file.exists()
    assert oct(secrets_file.stat().st_mode & 0o777) == "0o600"
    second = load_config({"app": {"instance_path": str(inst), "development": True}}, environ={})
    assert second.secrets == first.secrets
    # Production mode never generates anything.
    with pytest.raises(ConfigError, match="AFTERCARE_SECRET_KEY"):
        load_config({"app": {"instance_path": str(tmp_path / "other")}}, environ={})
    assert not (tmp_path / "other").exists()
