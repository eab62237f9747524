"""Credentials at rest: Fernet with several keys (MultiFernet) so keys can rotate without downtime."""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class DecryptionError(ValueError):
    """A ciphertext that none of the configured keys can open."""


class Vault:
    """Encrypt and decrypt credentials; the first key encrypts, every key decrypts."""

    def __init__(self, keys: str | Iterable[str]):
        if isinstance(keys, str):
            keys = [k.strip() for k in keys.split(",") if k.strip()]
        self._keys = [Fernet(k.encode() if isinstance(k, str) else k) for k in keys]
        if not self._keys:
            raise ValueError("at least one Fernet key is required")
        self._fernet = MultiFernet(self._keys)

    def encrypt(self, plaintext: str | None) -> bytes | None:
        """Return the ciphertext of a credential (None stays None)."""
        if plaintext is None:
            return None
        return self._fernet.encrypt(plaintext.encode("utf-8"))

    def decrypt(self, ciphertext: bytes | None) -> str | None:
        """Return the clear text of a stored credential (None stays None)."""
        if ciphertext is None:
            return None
        try:
            return self._fernet.decrypt(bytes(ciphertext)).decode("utf-8")
        except InvalidToken as exc:
            raise DecryptionError("stored credential cannot be decrypted with AFTERCARE_ENCRYPTION_KEY") from exc

    def rotate(self, ciphertext: bytes | None) -> bytes | None:
        """Re-encrypt a ciphertext with the primary (first) key."""
        if ciphertext is None:
            return None
        try:
            return self._fernet.rotate(bytes(ciphertext))
        except InvalidToken as exc:
            raise DecryptionError("stored credential cannot be decrypted with AFTERCARE_ENCRYPTION_KEY") from exc


def generate_key() -> str:
    """Return a new Fernet key."""
    return Fernet.generate_key().decode()
