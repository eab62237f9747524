"""Holdout groups: a stable share of a flow's eligible customers gets nothing, so the report can show lift."""

from __future__ import annotations

import hashlib

# Buckets of 1/10,000: a percent setting maps onto whole buckets.
_BUCKETS = 10_000


def bucket(store_id: int, customer_id: int, flow: str) -> int:
    """Return the customer's bucket (0-9999) for this store and flow, the same on every run and machine."""
    digest = hashlib.sha256(f"{store_id}:{customer_id}:{flow}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _BUCKETS


def is_held_out(store_id: int, customer_id: int, flow: str, percent: float) -> bool:
    """Say whether the customer is in the flow's holdout group at ``percent`` % (0 holds out nobody)."""
    if percent <= 0:
        return False
    return bucket(store_id, customer_id, flow) < percent * _BUCKETS / 100
