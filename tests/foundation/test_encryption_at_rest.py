"""Credentials at rest are Fernet ciphertexts; keys rotate without losing a credential."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import text

from aftercare.cli import main
from plugin.crypto import DecryptionError, Vault
from plugin.models import Merchant, Store
from plugin.secrets_store import get_credential, set_credential

ACCESS = "shpat_0123456789abcdef0123456789abcdef"
REFRESH = "shprt_fedcba9876543210fedcba9876543210"
REVIEW_TOKEN = "judgeme-private-token-42"


def _store(session, vault):
    merchant = Merchant(name="Acme")
    session.add(merchant)
    session.flush()
    store = Store(merchant_id=merchant.id, platform="shopify", external_id="acme.myshopify.com")
    set_credential(store, vault, "access_token_enc", ACCESS)
    set_credential(store, vault, "refresh_token_enc", REFRESH)
    set_credential(store, vault, "review_app_token_enc", REVIEW_TOKEN)
    session.add(store)
    session.flush()
    return store


def test_raw_row_holds_no_clear_text(db_session):
    vault = Vault(Fernet.generate_key().decode())
    store = _store(db_session, vault)
    raw = db_session.execute(text("SELECT access_token_enc, refresh_token_enc, review_app_token_enc FROM store "
                                  "WHERE id = :id"), {"id": store.id}).one()
    blob = b"".join(bytes(v) for v in raw)
    for secret in (ACCESS, REFRESH, REVIEW_TOKEN):
        assert secret.encode() not in blob
    assert get_credential(store, vault, "access_token_enc") == ACCESS
    assert get_credential(store, vault, "refresh_token_enc") == REFRESH
    with pytest.raises(DecryptionError):
        get_credential(store, Vault(Fernet.generate_key().decode()), "access_token_enc")


def test_keys_rotate_command_reencrypts_with_the_new_key(database, tmp_path, monkeypatch):
    from tests.conftest import wipe

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with database.session() as session:
        store_id = _store(session, Vault(old_key)).id
    monkeypatch.chdir(tmp_path)
    env = {"AFTERCARE_SECRET_KEY": "k" * 32, "AFTERCARE_ENCRYPTION_KEY": f"{new_key},{old_key}",
           "AFTERCARE_DATABASE_URL": database.url}
    try:
        result = CliRunner().invoke(main, ["keys", "rotate"], env=env)
        assert result.exit_code == 0, result.output
        assert "re-encrypted 3 credentials" in result.output
        with database.session() as session:
            store = session.get(Store, store_id)
            only_new = Vault(new_key)  # the old key can now be dropped
            assert get_credential(store, only_new, "access_token_enc") == ACCESS
            assert get_credential(store, only_new, "refresh_token_enc") == REFRESH
            assert get_credential(store, only_new, "review_app_token_enc") == REVIEW_TOKEN
    finally:
        wipe(database.engine)
