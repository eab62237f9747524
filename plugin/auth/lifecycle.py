"""Store lifecycle after install: uninstall, revoked tokens (reinstall needed), and what each stops."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from plugin.models import LwaAccessToken, Store

log = logging.getLogger("aftercare.auth")

SKIP_UNINSTALLED = "store_uninstalled"
SKIP_REINSTALL_NEEDED = "store_reinstall_needed"


def drop_tokens(store: Store) -> None:
    """Forget the store's Shopify tokens (they are useless once the app is uninstalled or revoked)."""
    store.access_token_enc = None
    store.access_token_expires_at = None
    store.refresh_token_enc = None
    store.refresh_token_expires_at = None


def mark_uninstalled(session: Session, store: Store, now: datetime) -> None:
    """Stop everything for an uninstalled store at once: status, timestamp, tokens (messages: the caller)."""
    if store.status != "uninstalled":
        log.info("store uninstalled", extra={"store_id": store.id, "shop": store.external_id})
    store.status = "uninstalled"
    store.uninstalled_at = store.uninstalled_at or now
    drop_tokens(store)
    # An Amazon seller's stored LWA access token goes with its refresh token.
    session.execute(delete(LwaAccessToken).where(LwaAccessToken.store_id == store.id))
    session.flush()


def mark_reinstall_needed(session: Session, store: Store, reason: str) -> None:
    """Record that the store's grant was revoked: its jobs and sending stop until the merchant reinstalls."""
    store.status = "reinstall_needed"
    drop_tokens(store)
    log.warning("store needs reinstall: Shopify refused the refresh token",
                extra={"store_id": store.id, "shop": store.external_id, "reason": reason})
    session.flush()
