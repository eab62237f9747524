"""What Amazon meters per seller, kept beyond one job run: SP-API token buckets and the LWA access token.

Amazon's rate limits are token buckets per application and selling partner
(https://developer-docs.amazon.com/sp-api/docs/usage-plans-and-rate-limits-in-the-sp-api) and an access token
is valid for an hour (https://developer-docs.amazon.com/sp-api/docs/connecting-to-the-selling-partner-api). A
session per run that starts with full buckets and a new token sends a 429 on back-to-back runs and thousands
of token requests a month; these stores make every run and worker of one seller share both.

Buckets: one ``rate_bucket`` row per (store, operation). Refill and take are one ``UPDATE ... RETURNING``, so
concurrent workers cannot both spend the same token: PostgreSQL locks the row for the statement, SQLite runs
writers one at a time (``BEGIN IMMEDIATE``, plugin/db.py). Times are seconds on the jobs' clock.

Tokens: one ``lwa_access_token`` row per store, the token encrypted with the vault (a secret at rest is never
clear text), keyed by a fingerprint of the app and refresh token so a reconnected seller never reuses the old one.
A key the vault no longer holds reads as "no token": a new one is fetched.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, delete, literal, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from base.clock import Clock
from plugin.crypto import DecryptionError, Vault
from plugin.db import Database
from plugin.models import LwaAccessToken, RateBucket

BUCKETS = RateBucket.__table__
TOKENS = LwaAccessToken.__table__
# Start slightly after the bucket should hold a token: our clock and Amazon's never agree exactly.
SAFETY_SECONDS = 0.02


def _insert(database: Database, table: object) -> object:
    return (pg_insert if database.dialect == "postgresql" else sqlite_insert)(table)  # type: ignore[arg-type]


class DatabaseBuckets:
    """A seller's SP-API token buckets in ``rate_bucket``, shared by every run, process and worker."""

    def __init__(self, database: Database, store_id: int, clock: Clock):
        self.database = database
        self.store_id = store_id
        self.clock = clock
        self._known: set[str] = set()  # operations whose row this object has made sure exists

    def _seconds(self) -> float:
        return self.clock.now().timestamp()

    def _ensure(self, connection: object, operation: str, rate: float, burst: int, now: float) -> None:
        if operation in self._known:
            return
        stmt = _insert(self.database, BUCKETS).values(  # type: ignore[attr-defined]
            store_id=self.store_id, operation=operation, tokens=float(burst), rate=rate, burst=burst, updated_at=now)
        connection.execute(stmt.on_conflict_do_nothing(index_elements=["store_id", "operation"]))  # type: ignore[attr-defined]
        self._known.add(operation)

    def _refilled(self, now: float) -> object:
        """The row's tokens refilled up to ``now`` (never beyond the burst; a clock behind the row adds nothing)."""
        elapsed = case((literal(now) > BUCKETS.c.updated_at, literal(now) - BUCKETS.c.updated_at), else_=0.0)
        grown = BUCKETS.c.tokens + elapsed * BUCKETS.c.rate
        return case((grown > BUCKETS.c.burst, BUCKETS.c.burst), else_=grown)

    def _later(self, now: float) -> object:
        return case((literal(now) > BUCKETS.c.updated_at, literal(now)), else_=BUCKETS.c.updated_at)

    def _where(self, operation: str) -> object:
        return (BUCKETS.c.store_id == self.store_id) & (BUCKETS.c.operation == operation)

    def reserve(self, operation: str, rate: float, burst: int) -> float:
        """Take one token in one atomic statement and return the seconds to wait before using it."""
        now = self._seconds()
        with self.database.engine.begin() as connection:
            self._ensure(connection, operation, rate, burst, now)
            row = connection.execute(
                update(BUCKETS).where(self._where(operation))
                .values(tokens=self._refilled(now) - 1.0, updated_at=self._later(now))
                .returning(BUCKETS.c.tokens, BUCKETS.c.rate)).one()
        tokens, current_rate = float(row.tokens), float(row.rate)
        if tokens >= 0:
            return 0.0
        return -tokens / current_rate + SAFETY_SECONDS

    def drain(self, operation: str, rate: float, burst: int) -> None:
        """Empty the bucket after a 429 (what is already owed stays owed)."""
        now = self._seconds()
        refilled = self._refilled(now)
        with self.database.engine.begin() as connection:
            self._ensure(connection, operation, rate, burst, now)
            connection.execute(update(BUCKETS).where(self._where(operation)).values(
                tokens=case((refilled > 0.0, 0.0), else_=refilled), updated_at=self._later(now)))

    def set_rate(self, operation: str, rate: float, burst: int) -> None:
        """Adopt the rate Amazon reports (``x-amzn-RateLimit-Limit``), refilling at the old rate up to now."""
        if rate <= 0:
            return
        now = self._seconds()
        with self.database.engine.begin() as connection:
            self._ensure(connection, operation, rate, burst, now)
            connection.execute(update(BUCKETS).where(self._where(operation)).values(
                tokens=self._refilled(now), updated_at=self._later(now), rate=rate))


class StoredAccessTokens:
    """A seller's LWA access token in ``lwa_access_token``, encrypted with the vault."""

    def __init__(self, database: Database, vault: Vault, store_id: int):
        self.database = database
        self.vault = vault
        self.store_id = store_id

    def load(self, fingerprint: str) -> tuple[str, datetime] | None:
        """Return the stored token and its expiry when it was issued for this app and refresh token."""
        with self.database.session() as session:
            row = session.get(LwaAccessToken, self.store_id)
            if row is None or row.cache_key != fingerprint:
                return None
            ciphertext, expires_at = row.token_enc, row.expires_at
        try:
            token = self.vault.decrypt(ciphertext)
        except DecryptionError:
            return None  # encrypted with a key since retired: fetch a new one
        return (token, expires_at) if token else None

    def save(self, fingerprint: str, access_token: str, expires_at: datetime) -> None:
        """Keep a new token (the later expiry wins when two workers fetched one at once)."""
        values = {"store_id": self.store_id, "cache_key": fingerprint,
                  "token_enc": self.vault.encrypt(access_token), "expires_at": expires_at}
        stmt = _insert(self.database, TOKENS).values(**values)  # type: ignore[attr-defined]
        stmt = stmt.on_conflict_do_update(
            index_elements=["store_id"],
            set_={"cache_key": stmt.excluded.cache_key, "token_enc": stmt.excluded.token_enc,
                  "expires_at": stmt.excluded.expires_at},
            where=(TOKENS.c.cache_key != stmt.excluded.cache_key) | (TOKENS.c.expires_at < stmt.excluded.expires_at))
        with self.database.engine.begin() as connection:
            connection.execute(stmt)

    def forget(self) -> None:
        """Drop the stored token (Amazon refused it before its expiry)."""
        with self.database.engine.begin() as connection:
            connection.execute(delete(TOKENS).where(TOKENS.c.store_id == self.store_id))
