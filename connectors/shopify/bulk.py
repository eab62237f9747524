"""Bulk query operations: start one, wait for it, stream its JSONL result back as reassembled objects.

https://shopify.dev/docs/api/usage/bulk-operations/queries — one bulk query per app and shop at a time
(a second gets the userError ``OPERATION_IN_PROGRESS``); the result is a JSONL file where each node of a
nested connection is its own line carrying ``__parentId``. Shopify writes a parent's children right after it,
but this reader does not depend on it: children may come before or long after their parent, with memory
bounded by a window of pending parents.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from base.retry import RetryBudget, RetryPolicy
from connectors.shopify import queries
from connectors.shopify.client import RETRYABLE_EXCEPTIONS, ShopifyClient
from connectors.shopify.errors import ShopifyBadResponse, ShopifyError, ShopifyServerError, ShopifyUserError
from connectors.shopify.parse import parse_time

log = logging.getLogger("aftercare.connectors.shopify.bulk")

# Read the file in 64 KiB chunks (requests defaults to 512 bytes, which dominates the parse time).
CHUNK_BYTES = 65536
FINISHED = {"COMPLETED", "FAILED", "CANCELED", "EXPIRED"}
# JSONL is UTF-8: decoding each line directly skips json.loads' per-call encoding detection (a third of its time).
_decode = json.JSONDecoder().decode


class BulkOperationFailed(ShopifyError):
    """The bulk operation ended FAILED, CANCELED or EXPIRED, or did not finish in time."""


class BulkOperationGone(BulkOperationFailed):
    """The bulk operation cannot give a result any more: unknown, or ended FAILED, CANCELED or EXPIRED."""


@dataclass
class BulkResult:
    """A finished bulk operation: its id, when Shopify started it and where the JSONL lives (None if empty)."""

    id: str
    created_at: datetime | None
    url: str | None
    object_count: int = 0
    root_object_count: int = 0


@dataclass
class BulkRunner:
    """Start a bulk query and poll it to completion, through the client (pacing and retries included)."""

    client: ShopifyClient
    poll_interval: float = 2.0
    max_polls: int = 3600
    max_start_attempts: int = 30

    def run(self, query: str) -> BulkResult:
        """Run ``query`` as a bulk operation; when another one is in progress, wait for it first."""
        return self.wait(self.start(query))

    def resume(self, operation_id: str) -> BulkResult | None:
        """Wait for an operation an earlier run started; None when it can no longer give a result.

        A COMPLETED operation is returned at once (its file is still there); one still running is waited for.
        """
        try:
            return self.wait(operation_id)
        except BulkOperationGone as exc:
            log.info("earlier bulk operation unusable", extra={"shop": self.client.shop, "problem": str(exc)})
            return None

    def start(self, query: str) -> str:
        """Start ``query`` as a bulk operation and return its id; when another one is in progress, wait first."""
        for _ in range(self.max_start_attempts):
            payload = self.client.execute(queries.BULK_RUN, {"query": query})["bulkOperationRunQuery"]
            errors = (payload or {}).get("userErrors") or []
            if any(e.get("code") == "OPERATION_IN_PROGRESS" for e in errors):
                # Ours from a crashed run or someone else's: either way only one may run; wait it out.
                log.info("bulk operation already running; waiting", extra={"shop": self.client.shop})
                self._wait_current()
                continue
            if errors:
                raise ShopifyUserError("bulkOperationRunQuery: " + "; ".join(str(e.get("message")) for e in errors),
                                       errors)
            operation = (payload or {}).get("bulkOperation")
            if not operation:
                raise ShopifyBadResponse("bulkOperationRunQuery returned no operation")
            return str(operation["id"])
        raise BulkOperationFailed("another bulk operation kept running; gave up starting ours")

    def _wait_current(self) -> None:
        for _ in range(self.max_polls):
            current = self.client.execute(queries.BULK_CURRENT)["currentBulkOperation"]
            if not current or current.get("status") in FINISHED:
                return
            self.client.sleep(self.poll_interval)
        raise BulkOperationFailed("the running bulk operation did not finish in time")

    def wait(self, operation_id: str) -> BulkResult:
        """Poll the operation until it finishes; raise BulkOperationFailed unless it COMPLETED."""
        for _ in range(self.max_polls):
            node = self.client.execute(queries.BULK_BY_ID, {"id": operation_id})["node"]
            if not node:
                raise BulkOperationGone(f"bulk operation {operation_id} not found")
            status = node.get("status")
            if status == "COMPLETED":
                return BulkResult(id=node["id"], created_at=parse_time(node.get("createdAt")), url=node.get("url"),
                                  object_count=int(node.get("objectCount") or 0),
                                  root_object_count=int(node.get("rootObjectCount") or 0))
            if status in FINISHED:
                raise BulkOperationGone(f"bulk operation {operation_id} ended {status} "
                                          f"({node.get('errorCode') or 'no error code'})")
            self.client.sleep(self.poll_interval)
        raise BulkOperationFailed(f"bulk operation {operation_id} did not finish in time")


@dataclass
class BulkObject:
    """A root object of a bulk result with its children (all nested connections' nodes, in file order)."""

    node: dict[str, Any]
    children: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class JsonlReader:
    """Stream a bulk JSONL file line by line and yield root objects with their children.

    Memory stays bounded: at most ``window`` parents wait for late children. A child whose parent was
    already handed out is not lost: its parent id lands in ``late_parents`` so the caller refetches that
    object. Transient download failures (dropped connection, 5xx, a corrupt line) restart the download and
    skip the lines already read, so nothing is read twice.
    """

    url: str
    timeout: float = 60.0
    session: requests.Session | None = None
    sleep: Callable[[float], None] | None = None
    window: int = 200
    max_attempts: int = 8
    late_parents: set[str] = field(default_factory=set)
    lines_read: int = 0

    def __iter__(self) -> Iterator[BulkObject]:
        pending: OrderedDict[str, BulkObject | list[dict[str, Any]]] = OrderedDict()
        emitted: set[str] = set()
        for item in self._lines():
            parent = item.pop("__parentId", None)
            if parent is None:
                gid = item.get("id")
                if not gid:
                    raise ShopifyBadResponse("bulk JSONL root line without id")
                early = pending.pop(gid, None)
                pending[gid] = BulkObject(item, early if isinstance(early, list) else [])
                while len(pending) > self.window:
                    key, obj = pending.popitem(last=False)
                    if isinstance(obj, BulkObject):
                        emitted.add(key)
                        yield obj
                    else:
                        # Children whose parent is far away: give up holding them; refetch the parent later.
                        self.late_parents.add(key)
            elif parent in emitted:
                self.late_parents.add(parent)
            else:
                slot = pending.get(parent)
                if slot is None:
                    pending[parent] = [item]
                elif isinstance(slot, BulkObject):
                    slot.children.append(item)
                else:
                    slot.append(item)
        for key, obj in pending.items():
            if isinstance(obj, BulkObject):
                yield obj
            else:
                self.late_parents.add(key)
        pending.clear()

    def _lines(self) -> Iterator[dict[str, Any]]:
        http = self.session or requests.Session()
        policy = RetryPolicy(max_attempts=self.max_attempts, base_seconds=2.0, max_seconds=30.0, jitter=0.0)
        budget = RetryBudget(policy, self.sleep or _no_wait, on_retry=self._note_retry, on_give_up=_gave_up)
        while True:
            try:
                # The file URL is pre-signed: no access token goes with it (it may be a third-party host).
                with http.get(self.url, stream=True, timeout=self.timeout) as response:
                    if response.status_code >= 500 or response.status_code == 429:
                        raise ShopifyServerError(f"bulk file download: HTTP {response.status_code}",
                                                 response.status_code)
                    if response.status_code >= 400:
                        # Pre-signed URLs expire (a week on Shopify): the operation's result is gone.
                        raise BulkOperationGone(f"bulk file download refused: HTTP {response.status_code}")
                    skip = self.lines_read
                    for raw in response.iter_lines(chunk_size=CHUNK_BYTES):
                        if not raw:
                            continue
                        if skip:
                            skip -= 1
                            continue
                        try:
                            item = _decode(raw.decode())
                        except ValueError as exc:  # UnicodeDecodeError included
                            raise ShopifyBadResponse(f"bulk file line {self.lines_read + 1} is not JSON") from exc
                        if not isinstance(item, dict):
                            raise ShopifyBadResponse(f"bulk file line {self.lines_read + 1} is not an object")
                        self.lines_read += 1
                        yield item
                    return
            except RETRYABLE_EXCEPTIONS as exc:
                budget.failed(ShopifyServerError(f"{type(exc).__name__}: {exc}"))
            except (ShopifyServerError, ShopifyBadResponse) as exc:
                budget.failed(exc)

    def _note_retry(self, error: BaseException, failures: int, delay: float) -> None:
        log.info("bulk file download retry", extra={"attempt": failures, "problem": str(error),
                                                    "lines_read": self.lines_read})


def _no_wait(seconds: float) -> None:
    """Retry at once: a reader built without a sleep restarts the download immediately."""


def _gave_up(error: BaseException, attempts: int) -> BaseException:
    return ShopifyServerError(f"bulk file download kept failing: {error}")
