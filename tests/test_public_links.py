"""Public pages reached from emails: signed links, idempotent one-click scores, CSRF, unsubscribe, redirects.

A forged, altered or expired link gets a friendly page (400/410) and changes nothing in the database.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from plugin.messaging import links
from plugin.models import Message, Suppression, SurveyResponse, Ticket
from tests.conftest import TEST_SECRET_KEY
from tests.messaging import seed
from tests.messaging.conftest import IN_WINDOW


@pytest.fixture
def world(app, clock):
    """Seed a store, a customer, an order and one message per public flow; return their ids."""
    clock.set(IN_WINDOW)
    database = app.extensions["aftercare.db"]
    with database.session() as s:
        store = seed.store(s, primary_locale="de")
        customer = seed.customer(s, store, 1, locale="fr")
        order = seed.order(s, store, customer, 1, products=2)
        survey = seed.message(s, store, customer, flow="survey", order_row=order, when=IN_WINDOW,
                              payload={"kind": "nps", "order_name": "#1001"}, locale="fr")
        survey.status, survey.sent_at = "sent", IN_WINDOW
        reorder = seed.message(s, store, customer, flow="replenishment", marketing=True, when=IN_WINDOW,
                               order_row=order, key="re-1",
                               payload={"variant_external_id": "gid://shopify/ProductVariant/9010", "quantity": 2,
                                        "discount_code": "REFILL-7A"})
        later = seed.message(s, store, customer, flow="replenishment", marketing=True, key="re-2",
                             when=IN_WINDOW + timedelta(days=20))
        request = seed.message(s, store, customer, flow="review_request", order_row=order, key="rr",
                               when=IN_WINDOW + timedelta(days=3))
        return {"store": store.id, "survey": survey.id, "reorder": reorder.id, "later": later.id,
                "request": request.id, "order": order.id}


def path(clock, purpose: str, message_id: int, **extra) -> str:
    return links.PATHS[purpose] + links.make_token(TEST_SECRET_KEY, clock, purpose, message_id, **extra)


def db(app):
    return app.extensions["aftercare.db"]


def responses(app) -> list[tuple[int, str | None]]:
    with db(app).session() as s:
        return [(r.score, r.comment) for r in s.scalars(select(SurveyResponse))]


def test_one_click_score_is_recorded_once_and_prefetchers_cannot_overwrite_it(app, client, clock, world) -> None:
    page = client.get(path(clock, "score", world["survey"], s=9))
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert '<html lang="fr" dir="ltr">' in body and "Merci ! Votre note a bien été enregistrée." in body
    assert '<input type="radio" name="score" value="9" checked aria-label="9">' in body
    assert responses(app) == [(9, None)]
    # A scanner (or a second click) on another score link: the page pre-selects it, the record stays.
    again = client.get(path(clock, "score", world["survey"], s=3))
    assert again.status_code == 200 and 'value="3" checked' in again.get_data(as_text=True)
    assert responses(app) == [(9, None)]
    with db(app).session() as s:
        assert s.get(Message, world["survey"]).clicked_at == IN_WINDOW


def test_comment_page_changes_the_score_with_a_csrf_token(app, client, clock, world) -> None:
    url = path(clock, "score", world["survey"], s=4)
    page = client.get(url).get_data(as_text=True)
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    assert responses(app) == [(4, None)]
    forged = client.post(url, data={"csrf": "0" * 64, "score": "10", "comment": "spam"})
    assert forged.status_code == 400
    assert responses(app) == [(4, None)]
    done = client.post(url, data={"csrf": csrf, "score": "2", "comment": "Le savon est arrivé cassé."})
    assert done.status_code == 200 and "Merci pour votre retour !" in done.get_data(as_text=True)
    assert responses(app) == [(2, "Le savon est arrivé cassé.")]
    with db(app).session() as s:  # a detractor opens a ticket (jobs.surveys.record_answer)
        assert s.scalar(select(func.count(Ticket.id))) == 1
    bad_score = client.post(url, data={"csrf": csrf, "score": "11"})
    assert bad_score.status_code == 400
    assert responses(app) == [(2, "Le savon est arrivé cassé.")]


def test_forged_altered_and_cross_purpose_links_change_nothing(app, client, clock, world) -> None:
    good = path(clock, "score", world["survey"], s=9)
    forged = links.PATHS["score"] + links.make_token("not-our-secret", clock, "score", world["survey"], s=9)
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    other_purpose = links.PATHS["score"] + links.make_token(TEST_SECRET_KEY, clock, "unsubscribe", world["survey"])
    for url in (forged, tampered, other_purpose, "/s/garbage", "/u/" + good[3:]):
        response = client.get(url) if not url.startswith("/u/") else client.post(url)
        assert response.status_code == 400, url
        text = response.get_data(as_text=True)
        assert "This link is not valid" in text and "Traceback" not in text
    assert responses(app) == []
    with db(app).session() as s:
        assert list(s.scalars(select(Suppression))) == []


def test_expired_links_get_410_and_change_nothing(app, client, clock, world) -> None:
    score = path(clock, "score", world["survey"], s=9)
    unsubscribe = path(clock, "unsubscribe", world["reorder"])
    reorder = path(clock, "reorder", world["reorder"])
    clock.advance(days=61)
    response = client.get(score, headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert response.status_code == 410
    assert "Dieser Link ist abgelaufen" in response.get_data(as_text=True)
    assert client.get(reorder).status_code == 302  # reorder links live 120 days
    clock.advance(days=400)
    assert client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 410
    assert client.get(reorder).status_code == 410
    assert responses(app) == []
    with db(app).session() as s:
        assert list(s.scalars(select(Suppression))) == []
        assert s.get(Message, world["reorder"]).clicked_at is not None  # only the one valid click above


def test_unsubscribe_page_confirms_and_one_click_post_suppresses_at_once(app, client, clock, world) -> None:
    url = path(clock, "unsubscribe", world["reorder"])
    page = client.get(url)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Ne plus recevoir d'e-mails de Calm Soaps à l'adresse c1@example.com ?" in text.replace("&#39;", "'")
    with db(app).session() as s:
        assert list(s.scalars(select(Suppression))) == []  # a GET never unsubscribes
    one_click = client.post(url, data={"List-Unsubscribe": "One-Click"},
                            content_type="application/x-www-form-urlencoded")
    assert one_click.status_code == 200
    with db(app).session() as s:
        suppression = s.scalar(select(Suppression))
        assert (suppression.store_id, suppression.email, suppression.reason) == (
            world["store"], "c1@example.com", "unsubscribe")
        later = s.get(Message, world["later"])
        assert (later.status, later.skip_reason) == ("cancelled", "unsubscribed")
        # Not marketing: stays scheduled, and the dispatcher skips it as suppressed at send time.
        assert s.get(Message, world["request"]).status == "scheduled"
    confirm = client.post(url, data={"confirm": "1"})
    assert confirm.status_code == 200
    assert "Vous êtes désabonné." in confirm.get_data(as_text=True)
    with db(app).session() as s:
        assert s.scalar(select(func.count(Suppression.id))) == 1


def test_reorder_redirects_to_the_cart_permalink_with_the_discount(app, client, clock, world) -> None:
    response = client.get(path(clock, "reorder", world["reorder"]))
    assert response.status_code == 302
    assert response.headers["Location"] == "https://calm-soaps.myshopify.com/cart/9010:2?discount=REFILL-7A"
    with db(app).session() as s:
        assert s.get(Message, world["reorder"]).clicked_at == IN_WINDOW


def test_review_link_redirects_to_the_product_review_form(app, client, clock, world) -> None:
    with db(app).session() as s:
        from plugin.models import OrderLine

        second_product = s.scalars(select(OrderLine.product_id).where(OrderLine.order_id == world["order"])
                                   .order_by(OrderLine.id)).all()[1]
    response = client.get(path(clock, "review", world["request"], pr=second_product))
    assert response.status_code == 302
    assert response.headers["Location"] == (
        "https://calm-soaps.myshopify.com/products/soap-1-1#judgeme_product_reviews")
    with db(app).session() as s:
        assert s.get(Message, world["request"]).clicked_at == IN_WINDOW


def test_pages_follow_the_customer_language_and_direction(app, client, clock) -> None:
    clock.set(IN_WINDOW)
    with db(app).session() as s:
        store = seed.store(s)
        customer = seed.customer(s, store, 7, locale="ar")
        message_id = seed.message(s, store, customer, flow="replenishment", marketing=True, when=IN_WINDOW).id
    page = client.get(path(clock, "unsubscribe", message_id)).get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in page
    assert "هل تريد التوقف عن تلقي رسائل Calm Soaps على c7@example.com؟" in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
