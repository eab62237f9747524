"""The Judge.me client against the Judge.me sandbox over real loopback HTTP."""

from __future__ import annotations

import logging
import math
import random
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from base.clock import FrozenClock
from connectors.records import ReviewRecord
from connectors.reviews import (
    JudgemeAuthError,
    JudgemeBadResponse,
    JudgemeClient,
    JudgemePaginationCapped,
    JudgemeRateLimited,
    JudgemeRequestRejected,
    JudgemeServerError,
    RetryPolicy,
)
from sandbox.judgeme import JudgemeSandbox

SHOP = "calm-coffee.myshopify.com"
TOKEN = "shpjm-private-token-4f1c9a7e"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PRODUCTS = [{"id": 7000 + i, "handle": f"product-{i}", "title": f"Product {i}"} for i in range(1, 7)]
REVIEWERS = [{"email": f"buyer{i}@example.com", "name": f"Buyer {i}", "id": 500 + i} for i in range(1, 9)]
PER_PRODUCT = 10  # 60 reviews


class Sleeps:
    """Records the waits the client asks for instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class RequestLog:
    """Keeps every real HTTP exchange a requests.Session made (a response hook, nothing replaced)."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.responses: list[requests.Response] = []
        self.session.hooks["response"].append(self._keep)

    def _keep(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        self.responses.append(response)

    def pages(self) -> list[int]:
        return [int(r.request.url.split("page=")[1].split("&")[0]) for r in self.responses
                if "/api/v1/reviews?" in r.request.url]


@pytest.fixture
def sandbox() -> Iterator[JudgemeSandbox]:
    with JudgemeSandbox(seed=11, shops={SHOP: TOKEN}, products=PRODUCTS, reviewers=REVIEWERS,
                        reviews_per_product=PER_PRODUCT, clock=FrozenClock(NOW)) as running:
        yield running


def _client(sandbox: JudgemeSandbox, sleeps: Sleeps | None = None, token: str = TOKEN, per_page: int = 7,
            session: requests.Session | None = None, max_attempts: int = 6) -> JudgemeClient:
    return JudgemeClient(SHOP, token, base_url=sandbox.url, timeout=5, per_page=per_page,
                         retry=RetryPolicy(max_attempts=max_attempts, base_seconds=0.5, max_seconds=8.0),
                         sleep=sleeps or Sleeps(), rng=random.Random(1), session=session)


def test_iter_reviews_returns_exactly_the_seeded_reviews(sandbox: JudgemeSandbox) -> None:
    log = RequestLog()
    with _client(sandbox, session=log.session) as client:
        records = list(client.iter_reviews())
    seeded = sandbox.reviews(SHOP)
    assert len(seeded) == len(PRODUCTS) * PER_PRODUCT
    assert sorted(r.external_id for r in records) == sorted(str(r.id) for r in seeded)
    assert log.pages() == list(range(1, math.ceil(len(seeded) / 7) + 1))
    by_id = {str(r.id): r for r in seeded}
    for record in records:
        review = by_id[record.external_id]
        assert record == ReviewRecord(
            source="judgeme", external_id=str(review.id), rating=review.rating, created_at=review.created_at,
            title=review.title, body=review.body, language=None, reviewer_name=review.reviewer.name,
            reviewer_email=review.reviewer.email, product_external_id=str(review.product.external_id),
            order_external_id=None, updated_at=review.updated_at, product_handle=review.product.handle,
            product_title=review.product.title, reviewer_external_id=str(review.reviewer.external_id),
            published=True, hidden=False, verified="nothing")
        assert record.created_at.tzinfo is not None


def test_since_returns_only_newer_reviews_and_stops_paging_early(sandbox: JudgemeSandbox) -> None:
    newest_first = sorted(sandbox.reviews(SHOP), key=lambda r: (r.created_at, r.id), reverse=True)
    since = newest_first[16].created_at  # the 17th newest review and everything newer
    expected = {str(r.id) for r in newest_first if r.created_at >= since}
    log = RequestLog()
    with _client(sandbox, session=log.session, per_page=5) as client:
        records = list(client.iter_reviews(since=since))
    assert {r.external_id for r in records} == expected
    assert len(records) == len(expected)
    first_older = next(i for i, r in enumerate(newest_first) if r.created_at < since)
    assert log.pages() == list(range(1, first_older // 5 + 2))


def test_since_after_everything_reads_one_page(sandbox: JudgemeSandbox) -> None:
    log = RequestLog()
    with _client(sandbox, session=log.session) as client:
        assert list(client.iter_reviews(since=NOW + timedelta(seconds=1))) == []
    assert log.pages() == [1]


def test_since_must_be_aware(sandbox: JudgemeSandbox) -> None:
    with _client(sandbox) as client, pytest.raises(ValueError):
        list(client.iter_reviews(since=datetime(2026, 1, 1)))  # naive on purpose


def test_a_review_added_while_paging_is_not_duplicated(sandbox: JudgemeSandbox) -> None:
    client = _client(sandbox, per_page=5)
    iterator = client.iter_reviews()
    first_page = [next(iterator) for _ in range(5)]
    # A new review pushes every older review one place down: page 2 now starts with page 1's last review.
    sandbox.add_review(SHOP, product_id=7001, email="late@example.com", name="Late", rating=2, body="Late.")
    rest = list(iterator)
    ids = [r.external_id for r in first_page + rest]
    assert len(ids) == len(set(ids))
    assert set(ids) == {str(r.id) for r in sandbox.reviews(SHOP)} - {str(sandbox.reviews(SHOP)[0].id)}


def test_get_review(sandbox: JudgemeSandbox) -> None:
    review = sandbox.reviews(SHOP)[5]
    with _client(sandbox) as client:
        record = client.get_review(review.id)
        assert (record.external_id, record.rating, record.body) == (str(review.id), review.rating, review.body)
        with pytest.raises(JudgemeRequestRejected) as missing:
            client.get_review(1)
    assert missing.value.status == 404


def test_bad_token_raises_auth_error_at_once_without_leaking_it(sandbox: JudgemeSandbox) -> None:
    sleeps = Sleeps()
    wrong = "shpjm-wrong-token-0000"
    with _client(sandbox, sleeps=sleeps, token=wrong) as client:
        with pytest.raises(JudgemeAuthError) as refused:
            list(client.iter_reviews())
        with pytest.raises(JudgemeAuthError):
            client.post_reply(sandbox.reviews(SHOP)[0].id, "Thanks")
    assert sleeps.calls == []
    assert wrong not in str(refused.value) and wrong not in repr(client)
    assert sandbox.replies() == []


def test_reply_posted_by_the_client_is_recorded_exactly_once(sandbox: JudgemeSandbox) -> None:
    review = sandbox.reviews(SHOP)[2]
    with _client(sandbox) as client:
        posted = client.post_reply(str(review.id), "Merci pour votre avis !")
    received = sandbox.replies(SHOP)
    assert len(received) == 1
    assert (received[0].review_id, received[0].content, received[0].send_reply_email) == (
        review.id, "Merci pour votre avis !", False)
    assert (posted.review_external_id, posted.reply_external_id, posted.body) == (
        str(review.id), str(received[0].id), "Merci pour votre avis !")


def test_reply_to_unknown_review_or_blank_body_is_refused(sandbox: JudgemeSandbox) -> None:
    with _client(sandbox) as client:
        with pytest.raises(JudgemeRequestRejected) as unknown:
            client.post_reply(1, "Thanks")
        with pytest.raises(ValueError):
            client.post_reply(sandbox.reviews(SHOP)[0].id, "  ")
        with pytest.raises(ValueError):
            client.post_reply("abc", "Thanks")
    assert unknown.value.status == 422
    assert sandbox.replies() == []


def test_ten_percent_faults_still_yield_the_full_set_and_one_reply(sandbox: JudgemeSandbox) -> None:
    sandbox.set_faults(0.1, seed=4)  # 429, 500, 503, malformed bodies, dropped connections
    sleeps = Sleeps()
    with _client(sandbox, sleeps=sleeps, per_page=5) as client:
        records = list(client.iter_reviews())
        target = sandbox.reviews(SHOP)[0]
        client.post_reply(target.id, "Thank you!")
    assert sorted(r.external_id for r in records) == sorted(str(r.id) for r in sandbox.reviews(SHOP))
    assert len(records) == len(PRODUCTS) * PER_PRODUCT
    injected = sum(sandbox.faults.counts.values())
    assert injected >= 1
    assert len(sleeps.calls) == injected  # one retry per injected fault, each after one wait
    assert [(r.review_id, r.content) for r in sandbox.replies()] == [(target.id, "Thank you!")]


def test_every_fault_kind_is_survived(sandbox: JudgemeSandbox) -> None:
    sandbox.set_faults(0.4, seed=4)
    sleeps = Sleeps()
    with _client(sandbox, sleeps=sleeps, per_page=5) as client:
        records = list(client.iter_reviews())
        client.post_reply(sandbox.reviews(SHOP)[1].id, "Gracias")
    assert set(sandbox.faults.counts) == {"429", "500", "503", "malformed", "drop"}
    assert len(sleeps.calls) == sum(sandbox.faults.counts.values())
    assert sorted(r.external_id for r in records) == sorted(str(r.id) for r in sandbox.reviews(SHOP))
    assert len(sandbox.replies()) == 1


def test_rate_limit_honours_retry_after_then_gives_up(sandbox: JudgemeSandbox) -> None:
    sandbox.set_faults(1.0, kinds=["429"])
    sleeps = Sleeps()
    with _client(sandbox, sleeps=sleeps, max_attempts=3) as client, pytest.raises(JudgemeRateLimited) as limited:
        list(client.iter_reviews())
    assert sleeps.calls == [1.0, 1.0]  # the sandbox answers Retry-After: 1
    assert limited.value.retry_after == 1.0


def test_server_errors_back_off_exponentially_then_raise(sandbox: JudgemeSandbox) -> None:
    sandbox.set_faults(1.0, kinds=["503"])
    sleeps = Sleeps()
    with _client(sandbox, sleeps=sleeps, max_attempts=5) as client, pytest.raises(JudgemeServerError) as failed:
        client.post_reply(sandbox.reviews(SHOP)[0].id, "Thanks")
    assert failed.value.status == 503
    assert len(sleeps.calls) == 4
    for attempt, delay in enumerate(sleeps.calls, start=1):
        ceiling = min(8.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert sandbox.replies() == []


def test_malformed_bodies_are_retried_then_reported(sandbox: JudgemeSandbox) -> None:
    sandbox.set_faults(1.0, kinds=["malformed"])
    sleeps = Sleeps()
    with _client(sandbox, sleeps=sleeps, max_attempts=2) as client, pytest.raises(JudgemeBadResponse):
        list(client.iter_reviews())
    assert len(sleeps.calls) == 1


def test_dropped_connections_are_retried(sandbox: JudgemeSandbox) -> None:
    sandbox.set_faults(1.0, kinds=["drop"])
    sleeps = Sleeps()
    with _client(sandbox, sleeps=sleeps, max_attempts=2) as client, pytest.raises(JudgemeServerError) as failed:
        client.get_review(sandbox.reviews(SHOP)[0].id)
    assert len(sleeps.calls) == 1
    assert failed.value.status in (None, 500)


def test_a_slow_answer_times_out_and_is_retried(sandbox: JudgemeSandbox) -> None:
    sandbox.faults.configure(1.0, ["slow"], slow_seconds=0.4)  # the sandbox stalls on purpose
    sleeps = Sleeps()
    client = JudgemeClient(SHOP, TOKEN, base_url=sandbox.url, timeout=0.1, retry=RetryPolicy(max_attempts=2),
                           sleep=sleeps)
    with pytest.raises(JudgemeServerError) as failed:
        client.get_review(sandbox.reviews(SHOP)[0].id)
    assert failed.value.status is None and "ReadTimeout" in str(failed.value)
    assert len(sleeps.calls) == 1


def test_nothing_listening_is_a_server_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener now
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    sleeps = Sleeps()
    client = JudgemeClient(SHOP, TOKEN, base_url=f"http://127.0.0.1:{free_port}", timeout=2,
                           retry=RetryPolicy(max_attempts=3), sleep=sleeps)
    with pytest.raises(JudgemeServerError) as failed:
        list(client.iter_reviews())
    assert failed.value.status is None
    assert len(sleeps.calls) == 2


def test_pagination_cap_is_reported_not_looped(clock: FrozenClock) -> None:
    with JudgemeSandbox(seed=2, shops={SHOP: TOKEN}, products=PRODUCTS[:3], reviewers=REVIEWERS,
                        reviews_per_product=5, clock=clock, max_page=2) as sandbox:
        client = _client(sandbox, per_page=5)
        got: list[ReviewRecord] = []
        with pytest.raises(JudgemePaginationCapped):
            for record in client.iter_reviews():
                got.append(record)
    assert len(got) == 10


def test_token_never_appears_in_urls_or_logs(sandbox: JudgemeSandbox, caplog: pytest.LogCaptureFixture) -> None:
    sandbox.set_faults(0.3, seed=9)
    log = RequestLog()
    with caplog.at_level(logging.DEBUG):
        with _client(sandbox, session=log.session, per_page=10) as client:
            list(client.iter_reviews())
            client.post_reply(sandbox.reviews(SHOP)[0].id, "Thanks")
    assert any(r.name == "aftercare.connectors.judgeme" and r.levelno == logging.WARNING for r in caplog.records)
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in str(vars(record))
    assert log.responses
    for response in log.responses:
        assert TOKEN not in response.request.url
        assert response.request.headers["X-Api-Token"] == TOKEN
