"""Behind a TLS-terminating reverse proxy: `app.trusted_proxies` decides whether X-Forwarded-* is believed.

Without it the forwarded headers are ignored (a client cannot spoof its way out of the login throttle); with it
clients behind the proxy are throttled one by one and X-Forwarded-Proto=https makes cookies Secure. In
production every cookie is Secure whatever the request looks like.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from plugin import create_app
from plugin.admin.security import LoginThrottle
from plugin.config_errors import ConfigError
from plugin.messaging import links
from tests.conftest import TEST_SECRET_KEY, make_settings, wipe
from tests.messaging import seed
from tests.messaging.conftest import IN_WINDOW

PROXY = "10.0.0.2"  # the reverse proxy's address: every request reaches the app from it
LIMIT = LoginThrottle().limit


@pytest.fixture
def make_app(database_url: str, tmp_path: Path, clock) -> Iterator[Callable[..., Flask]]:
    """Return a factory of apps with the given [app] settings; their rows are wiped afterwards."""
    made: list[Flask] = []

    def build(**app_settings: object) -> Flask:
        application = create_app(make_settings(database_url, tmp_path / f"instance{len(made)}", app=app_settings),
                                 clock=clock)
        made.append(application)
        return application

    yield build
    for application in made:
        wipe(application.extensions["aftercare.db"].engine)
        application.extensions["aftercare.db"].dispose()


def _failed_login(client, forwarded_for: str) -> int:
    page = client.get("/admin/login", base_url="https://localhost")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    answer = client.post("/admin/login", base_url="https://localhost", environ_base={"REMOTE_ADDR": PROXY},
                         headers={"X-Forwarded-For": forwarded_for},
                         data={"email": "nobody@example.com", "password": "wrong password", "csrf_token": csrf})
    return answer.status_code


def test_without_trusted_proxies_forwarded_for_cannot_spoof_out_of_the_throttle(make_app):
    client = make_app().test_client()
    # Each attempt claims another client address; all of them count against the one real address.
    assert [_failed_login(client, f"198.51.100.{n}") for n in range(LIMIT)] == [401] * LIMIT
    assert _failed_login(client, "203.0.113.77") == 429


def test_with_a_trusted_proxy_clients_behind_it_are_throttled_separately(make_app):
    client = make_app(trusted_proxies=1).test_client()
    attacker, customer = "203.0.113.5", "198.51.100.7"
    assert [_failed_login(client, attacker) for _ in range(LIMIT)] == [401] * LIMIT
    assert _failed_login(client, attacker) == 429
    # The proxy appends the address it saw: a forged value in front of it is not believed.
    assert _failed_login(client, f"192.0.2.1, {attacker}") == 429
    assert _failed_login(client, customer) == 401  # the other client still gets to try


def _survey_link(application: Flask, clock) -> str:
    """Seed a sent survey and return the path of its score link."""
    clock.set(IN_WINDOW)
    with application.extensions["aftercare.db"].session() as s:
        store = seed.store(s)
        customer = seed.customer(s, store, 1)
        order = seed.order(s, store, customer, 1)
        message = seed.message(s, store, customer, flow="survey", order_row=order, when=IN_WINDOW,
                               payload={"kind": "nps", "order_name": "#1001"})
        message.status, message.sent_at = "sent", IN_WINDOW
        s.flush()
        message_id = message.id
    return links.PATHS["score"] + links.make_token(TEST_SECRET_KEY, clock, "score", message_id, s=9)


def _cookie(application: Flask, url: str, name: str, **request: object) -> set[str]:
    """Open a page through the proxy and return the attributes of the cookie it sets."""
    answer = application.test_client().get(url, environ_base={"REMOTE_ADDR": PROXY}, **request)
    assert answer.status_code == 200
    header = next(h for h in answer.headers.getlist("Set-Cookie") if h.startswith(f"{name}="))
    return {part.strip() for part in header.split(";")[1:]}


def test_in_production_the_survey_cookie_is_secure_even_over_plain_http(make_app, clock):
    application = make_app()
    url = _survey_link(application, clock)
    # What the app sees behind a TLS proxy it was not told about: plain http.
    attributes = {a for a in _cookie(application, url, "aftercare_csrf") if not a.startswith("Expires=")}
    assert attributes == {"Secure", "HttpOnly", "SameSite=Lax", "Path=/s/", "Max-Age=86400"}


def test_forwarded_proto_makes_cookies_secure_only_from_a_trusted_proxy(make_app, clock):
    https = {"headers": {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}}
    trusted, untrusted = make_app(development=True, trusted_proxies=1), make_app(development=True)
    url = _survey_link(trusted, clock)
    assert "Secure" in _cookie(trusted, url, "aftercare_csrf", **https)
    assert "Secure" in _cookie(trusted, "/admin/login", "aftercare_login_csrf", **https)
    assert "Secure" not in _cookie(untrusted, url, "aftercare_csrf", **https)
    assert "Secure" not in _cookie(untrusted, "/admin/login", "aftercare_login_csrf", **https)
    # Development over plain http keeps cookies usable on http://127.0.0.1.
    assert "Secure" not in _cookie(trusted, url, "aftercare_csrf")


def test_a_negative_number_of_proxies_stops_the_start(make_app):
    with pytest.raises(ConfigError, match="app.trusted_proxies"):
        make_app(trusted_proxies=-1)
