"""Reading, writing and rotating the encrypted credentials kept on `store` rows."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.crypto import Vault
from plugin.models import Store

ENCRYPTED_COLUMNS = ("access_token_enc", "refresh_token_enc", "review_app_token_enc")


def set_credential(store: Store, vault: Vault, column: str, value: str | None) -> None:
    """Encrypt a credential into one of the store's encrypted columns."""
    if column not in ENCRYPTED_COLUMNS:
        raise ValueError(f"{column} is not an encrypted credential column")
    setattr(store, column, vault.encrypt(value))


def get_credential(store: Store, vault: Vault, column: str) -> str | None:
    """Decrypt one of the store's credentials."""
    if column not in ENCRYPTED_COLUMNS:
        raise ValueError(f"{column} is not an encrypted credential column")
    return vault.decrypt(getattr(store, column))


def rotate_all(session: Session, vault: Vault) -> int:
    """Re-encrypt every credential with the vault's primary key; return how many were rewritten."""
    count = 0
    for store in session.scalars(select(Store).order_by(Store.id)):
        for column in ENCRYPTED_COLUMNS:
            value = getattr(store, column)
            if value is not None:
                setattr(store, column, vault.rotate(value))
                count += 1
    return count
