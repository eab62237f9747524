"""The signed "tell us your birthday" page: month and day only (29 February included), changeable once a year,
CSRF-protected, forged or expired links change nothing; the win-back and VIP emails link to it."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select

from plugin.messaging import links
from plugin.messaging.templates import preview
from plugin.models import Customer
from tests.conftest import TEST_SECRET_KEY
from tests.messaging import seed
from tests.messaging.conftest import IN_WINDOW


def _world(app, clock):
    clock.set(IN_WINDOW)
    with app.extensions["aftercare.db"].session() as s:
        store = seed.store(s)
        customer = seed.customer(s, store, 1, locale="de")
        message = seed.message(s, store, customer, flow="winback", marketing=True, when=IN_WINDOW, key="wb-1")
        return message.id, customer.id


def _path(clock, message_id):
    return links.PATHS["birthday"] + links.make_token(TEST_SECRET_KEY, clock, "birthday", message_id)


def _birthday(app, customer_id):
    with app.extensions["aftercare.db"].session() as s:
        c = s.get(Customer, customer_id)
        return c.birthday, c.birthday_changed_at


def _csrf(page) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page.get_data(as_text=True)).group(1)


def test_birthday_is_saved_once_a_year(app, client, clock) -> None:
    message_id, customer_id = _world(app, clock)
    url = _path(clock, message_id)
    page = client.get(url)
    assert page.status_code == 200 and "Februar" in page.get_data(as_text=True)  # the customer's language
    assert _birthday(app, customer_id) == (None, None)
    # Without the form's CSRF value nothing is saved.
    assert client.post(url, data={"month": "2", "day": "29", "csrf": "x"}).status_code == 400
    assert _birthday(app, customer_id) == (None, None)
    # An impossible date is refused.
    assert client.post(url, data={"month": "2", "day": "30", "csrf": _csrf(page)}).status_code == 400
    saved = client.post(url, data={"month": "2", "day": "29", "csrf": _csrf(page)})
    assert saved.status_code == 200
    assert _birthday(app, customer_id) == (date(2000, 2, 29), IN_WINDOW)
    # Changing it again within a year is refused, and the page says from when.
    clock.advance(days=100)
    url = _path(clock, message_id)
    again = client.get(url)
    assert 'name="month"' not in again.get_data(as_text=True)
    assert client.post(url, data={"month": "7", "day": "1", "csrf": _csrf(page)}).status_code == 409
    assert _birthday(app, customer_id)[0] == date(2000, 2, 29)
    clock.advance(days=266)
    url = _path(clock, message_id)
    page = client.get(url)
    assert client.post(url, data={"month": "7", "day": "1", "csrf": _csrf(page)}).status_code == 200
    assert _birthday(app, customer_id)[0] == date(2000, 7, 1)


def test_forged_and_expired_links_change_nothing(app, client, clock) -> None:
    message_id, customer_id = _world(app, clock)
    assert client.get(_path(clock, message_id)[:-3] + "abc").status_code == 400
    url = _path(clock, message_id)
    clock.advance(days=400)
    assert client.get(url).status_code == 410
    with app.extensions["aftercare.db"].session() as s:
        assert s.scalar(select(Customer.birthday).where(Customer.id == customer_id)) is None


def test_winback_and_vip_emails_link_to_the_page() -> None:
    for flow in ("winback", "vip"):
        assert "https://aftercare.example/b/sample" in preview(flow, "main", "en").html
