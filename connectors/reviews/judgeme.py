"""Judge.me REST API v1 client: list reviews page by page and post public replies.

Reference: https://judge.me/api/docs (OpenAPI: https://judge.me/api/docs.yaml).

- Auth is per shop: ``shop_domain`` as a query parameter plus the shop's private API token. The token goes in
  the ``X-Api-Token`` header, never in the URL, so it cannot leak through access logs or urllib3's debug lines.
- ``GET /api/v1/reviews`` pages with ``page``/``per_page`` (at most 100) and lists newest first. It has no
  date filter, so ``iter_reviews(since=...)`` stops at the first page that reaches reviews older than
  ``since``. Judge.me serves at most 100 pages (page 101 answers as page 100); the client notices through
  ``current_page`` and raises ``JudgemePaginationCapped`` instead of looping.
- ``POST /api/v1/replies`` takes ``{"review_id", "send_reply_email", "reply": {"content"}}``; a review has one
  public reply and posting again replaces it, so replaying a reply whose answer was lost is harmless.
- 429, 5xx, connection failures and unparsable bodies are retried with exponential backoff (honouring
  ``Retry-After``) through an injectable ``sleep``; other errors raise at once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import requests

from base.retry import RetryPolicy, call_with_retries
from connectors.errors import AuthRefused, BadResponse, ConnectorError, RateLimited, RequestRejected, TransientError
from connectors.records import PostedReply, ReviewRecord

log = logging.getLogger("aftercare.connectors.judgeme")

DEFAULT_BASE_URL = "https://judge.me"
API_PREFIX = "/api/v1"
MAX_PER_PAGE = 100
SOURCE = "judgeme"


class JudgemeError(ConnectorError):
    """Base class of every Judge.me client error."""


class JudgemeAuthError(JudgemeError, AuthRefused):
    """Judge.me refused the shop domain / API token pair (401 or 403)."""


class JudgemeRateLimited(JudgemeError, RateLimited):
    """Judge.me kept answering 429 after every retry; ``retry_after`` is its last ``Retry-After``."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message, status=429, retry_after=retry_after)


class JudgemeServerError(JudgemeError, TransientError):
    """Judge.me kept failing (5xx, dropped connection or timeout) after every retry; ``status`` None if no answer."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message, status=status)


class JudgemeBadResponse(JudgemeError, BadResponse):
    """Judge.me answered something that is not the documented JSON."""


class JudgemePaginationCapped(JudgemeBadResponse):
    """Judge.me stopped paging (it serves at most 100 pages); the listing is incomplete."""

    retryable = False


class JudgemeRequestRejected(JudgemeError, RequestRejected):
    """Judge.me rejected the request itself (404, 422 ...); retrying will not help."""

    def __init__(self, message: str, status: int):
        super().__init__(message, status=status)


# Retry n waits min(30, 0.5 * 2**n) seconds times [0.5, 1); six attempts in all.
DEFAULT_RETRY = RetryPolicy(max_attempts=6, base_seconds=0.5, max_seconds=30.0, jitter=0.5)


class JudgemeClient:
    """A client for one Judge.me shop."""

    record_kind = "reviews"  # what iter_reviews yields; names its sink in plugin.sync

    def __init__(self, shop_domain: str, api_token: str, *, base_url: str = DEFAULT_BASE_URL,
                 timeout: float = 20.0, per_page: int = MAX_PER_PAGE, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
                 session: requests.Session | None = None):
        if not shop_domain or not api_token:
            raise ValueError("shop_domain and api_token are required")
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be 1..{MAX_PER_PAGE}")
        self.shop_domain = shop_domain
        self._api_token = api_token
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.per_page = per_page
        self.retry = retry or DEFAULT_RETRY
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._own_session = session is None
        self._session = session or requests.Session()

    def __repr__(self) -> str:
        return f"JudgemeClient(shop_domain={self.shop_domain!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._own_session:
            self._session.close()

    def __enter__(self) -> JudgemeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API -------------------------------------------------------------------------------------
    def iter_reviews(self, since: datetime | None = None) -> Iterator[ReviewRecord]:
        """Yield the shop's reviews, newest first; with ``since``, those created at or after it.

        Paging stops at the first page that reaches reviews created before ``since`` (Judge.me has no date
        filter). A review edited since then but created earlier is yielded only if it sits on a page already
        read, so callers wanting edits pass an earlier ``since`` (an overlap) or run a full sync now and then.
        Each review is yielded once per call even if new reviews shift the pages while paging.
        """
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        seen: set[str] = set()
        page = 1
        while True:
            payload = self._request("GET", "/reviews", params={"page": page, "per_page": self.per_page})
            raw_reviews, served_page, served_per_page = _page_of(payload)
            if served_page is not None and served_page != page:
                raise JudgemePaginationCapped(
                    f"asked for page {page} of {self.shop_domain}'s reviews, Judge.me served page {served_page}")
            records = [_record(raw) for raw in raw_reviews]
            for record in records:
                if record.external_id in seen:
                    continue
                seen.add(record.external_id)
                if since is None or record.created_at >= since or record.updated_at >= since:
                    yield record
            if len(raw_reviews) < (served_per_page or self.per_page):
                return
            # Older pages only hold older reviews, as long as Judge.me keeps listing newest first.
            newest_first = all(a.created_at >= b.created_at for a, b in zip(records, records[1:], strict=False))
            if since is not None and newest_first and records[-1].created_at < since:
                return
            page += 1

    def get_review(self, review_id: int | str) -> ReviewRecord:
        """Return one review by its Judge.me id."""
        payload = self._request("GET", f"/reviews/{_review_id(review_id)}")
        if not isinstance(payload, dict) or not isinstance(payload.get("review"), dict):
            raise JudgemeBadResponse("expected {\"review\": {...}}")
        return _record(payload["review"])

    def post_reply(self, review_id: int | str, body: str, *, send_reply_email: bool = False) -> PostedReply:
        """Post (or replace) the public reply to a review; ``send_reply_email`` also emails the reviewer."""
        if not body or not body.strip():
            raise ValueError("reply body must not be blank")
        numeric_id = _review_id(review_id)
        payload = self._request("POST", "/replies", json_body={
            "review_id": numeric_id, "send_reply_email": send_reply_email, "reply": {"content": body}})
        reply_id = None
        if isinstance(payload, dict):
            reply = payload.get("reply") if isinstance(payload.get("reply"), dict) else payload
            if reply.get("id") is not None:
                reply_id = str(reply["id"])
        return PostedReply(review_external_id=str(numeric_id), reply_external_id=reply_id, body=body)

    # -- transport --------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, params: dict[str, Any] | None = None,
                 json_body: dict[str, Any] | None = None) -> Any:
        """Send one API call with retries and return the parsed JSON body."""
        url = f"{self.base_url}{API_PREFIX}{path}"
        query = {"shop_domain": self.shop_domain, **(params or {})}
        headers = {"X-Api-Token": self._api_token, "Accept": "application/json"}

        def note_retry(error: BaseException, failures: int, delay: float) -> None:
            log.warning("judgeme retry", extra={"shop_domain": self.shop_domain, "method": method, "path": path,
                                                "attempt": failures, "delay": round(delay, 3), "error": str(error)})

        return call_with_retries(lambda: self._attempt(method, url, path, query, headers, json_body), self.retry,
                                 self._sleep, retry_on=(JudgemeError,), rng=self._rng, on_retry=note_retry)

    def _attempt(self, method: str, url: str, path: str, query: dict[str, Any], headers: dict[str, str],
                 json_body: dict[str, Any] | None) -> Any:
        try:
            response = self._session.request(method, url, params=query, json=json_body, headers=headers,
                                             timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise JudgemeServerError(f"{method} {path}: no answer ({type(exc).__name__})") from None
        status = response.status_code
        log.debug("judgeme call", extra={"shop_domain": self.shop_domain, "method": method, "path": path,
                                         "status": status})
        if status in (401, 403):
            raise JudgemeAuthError(f"Judge.me refused the API token for {self.shop_domain} "
                                   f"({status}: {_error_text(response)})")
        if status == 429:
            raise JudgemeRateLimited(f"{method} {path}: rate limited", _retry_after(response))
        if status >= 500:
            raise JudgemeServerError(f"{method} {path}: {status} {_error_text(response)}", status)
        if status >= 400:
            raise JudgemeRequestRejected(f"{method} {path}: {status} {_error_text(response)}", status)
        try:
            return response.json()
        except ValueError:
            # A truncated body is usually a transient proxy or network glitch; the retry gets a whole one.
            raise JudgemeBadResponse(f"{method} {path}: body is not JSON") from None


# -- parsing ------------------------------------------------------------------------------------------
def _page_of(payload: Any) -> tuple[list[dict[str, Any]], int | None, int | None]:
    """Return (reviews, current_page, per_page) of a listing, checking its shape."""
    if not isinstance(payload, dict) or not isinstance(payload.get("reviews"), list):
        raise JudgemeBadResponse("expected {\"reviews\": [...]} from GET /reviews")
    reviews = payload["reviews"]
    if not all(isinstance(r, dict) for r in reviews):
        raise JudgemeBadResponse("reviews must be objects")
    try:
        current = int(payload["current_page"]) if payload.get("current_page") is not None else None
        per_page = int(payload["per_page"]) if payload.get("per_page") is not None else None
    except (TypeError, ValueError):
        raise JudgemeBadResponse("current_page/per_page are not integers") from None
    return reviews, current, per_page


def _record(raw: dict[str, Any]) -> ReviewRecord:
    """Map one review JSON object to a ``ReviewRecord``."""
    try:
        external_id = str(raw["id"])
        rating = int(raw["rating"])
        created_at = _timestamp(raw["created_at"])
    except (KeyError, TypeError, ValueError) as exc:
        raise JudgemeBadResponse(f"review without a valid id/rating/created_at: {exc}") from None
    if not 1 <= rating <= 5:
        raise JudgemeBadResponse(f"review {external_id} has rating {rating}")
    try:
        updated_at = _timestamp(raw["updated_at"]) if raw.get("updated_at") else created_at
    except ValueError:
        raise JudgemeBadResponse(f"review {external_id} has a bad updated_at") from None
    reviewer = raw.get("reviewer") if isinstance(raw.get("reviewer"), dict) else {}
    language = raw.get("language")  # not in Judge.me's review JSON today; kept should it appear
    return ReviewRecord(
        source=SOURCE,
        external_id=external_id,
        product_external_id=_opt_str(raw.get("product_external_id")),
        product_handle=_opt_str(raw.get("product_handle")),
        product_title=_opt_str(raw.get("product_title")),
        order_external_id=None,  # Judge.me does not say which order a review belongs to
        reviewer_external_id=_opt_str(reviewer.get("external_id")),
        reviewer_email=_opt_str(reviewer.get("email")),
        reviewer_name=_opt_str(reviewer.get("name")),
        rating=rating,
        title=_opt_str(raw.get("title")),
        body=str(raw.get("body") or ""),
        language=language if isinstance(language, str) and language else None,
        published=bool(raw.get("published", True)),
        hidden=bool(raw.get("hidden", False)),
        verified=_opt_str(raw.get("verified")),
        created_at=created_at,
        updated_at=updated_at,
    )


def _timestamp(value: Any) -> datetime:
    """Parse Judge.me's ISO 8601 timestamps (``2022-05-12T04:38:32+00:00``) into aware UTC datetimes."""
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # Judge.me always sends an offset; a bare time is UTC
    return parsed.astimezone(UTC)


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _review_id(review_id: int | str) -> int:
    try:
        return int(review_id)
    except (TypeError, ValueError):
        raise ValueError(f"Judge.me review ids are integers, got {review_id!r}") from None


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None  # an HTTP-date; the exponential backoff is good enough


def _error_text(response: requests.Response) -> str:
    """Return Judge.me's ``{"error": ...}`` message, or the start of the body."""
    try:
        payload = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(payload, dict) and payload.get("error"):
        return str(payload["error"])[:200]
    if isinstance(payload, dict) and payload.get("errors"):
        return str(payload["errors"])[:200]
    return response.text[:200]
