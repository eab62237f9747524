"""One shop's state in the Shopify sandbox: its store, what apps created on it, and its cost buckets.

Data only: the world (``world.py``) holds the shops, the assembly (``assembly.py``) serves them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from base.clock import Clock
from sandbox.shopify.cost import LeakyBucket
from sandbox.shopify.discounts import DiscountCode
from sandbox.shopify.models import BulkOperation, Store
from sandbox.shopify.webhooks import Subscription

API_VERSION = "2025-01"
DEFAULT_SHOP = "aftercare-demo.myshopify.com"


@dataclass
class ShopState:
    """One shop's store plus what apps created on it."""

    store: Store
    clock: Clock
    maximum_available: float
    restore_rate: float
    discounts: dict[int, DiscountCode] = field(default_factory=dict)
    subscriptions: dict[int, Subscription] = field(default_factory=dict)
    bulk_ops: dict[int, BulkOperation] = field(default_factory=dict)
    buckets: dict[str, LeakyBucket] = field(default_factory=dict)
    installed: set[str] = field(default_factory=set)
    revision: int = 0
    _sorted: dict[tuple[str, str], tuple[int, int, list[Any], list[Any]]] = field(default_factory=dict)
    _sort_lock: threading.Lock = field(default_factory=threading.Lock)

    def touch(self) -> None:
        """Note that store data changed (drops the sorted-list cache)."""
        self.revision += 1

    def sorted_items(self, kind: str, sort_key: str, items: list[Any], key: Callable[[Any], Any]
                     ) -> tuple[list[Any], list[Any]]:
        """Return ``items`` sorted by ``key`` and their keys, cached until the store changes."""
        with self._sort_lock:
            cached = self._sorted.get((kind, sort_key))
            if cached and cached[0] == self.revision and cached[1] == len(items):
                return cached[2], cached[3]
        ordered = sorted(items, key=key)
        keys = [key(i) for i in ordered]
        with self._sort_lock:
            self._sorted[(kind, sort_key)] = (self.revision, len(items), ordered, keys)
        return ordered, keys

    def bucket(self, client_id: str) -> LeakyBucket:
        """Return the app's cost bucket on this shop."""
        if client_id not in self.buckets:
            self.buckets[client_id] = LeakyBucket(self.clock, self.maximum_available, self.restore_rate)
        return self.buckets[client_id]
