"""Standalone mode: hashed passwords, CSRF on every form, secure cookies, account lock and per-address throttle."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from aftercare.cli import main
from plugin.admin.standalone import MAX_FAILED_LOGINS, create_admin_user
from plugin.models import AdminUser, Merchant
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET_KEY

PASSWORD = "correct horse battery staple"
HTTPS = "https://localhost"


@pytest.fixture
def user(app, tenants):
    """A standalone user of merchant A."""
    with app.extensions["aftercare.db"].session() as session:
        return create_admin_user(session, "Owner@Alpha.example", PASSWORD, merchant_id=tenants[0].merchant_id).id


def _login_form(client) -> str:
    page = client.get("/admin/login", base_url=HTTPS)
    assert page.headers["Content-Security-Policy"].startswith("frame-ancestors 'none'")
    html = page.get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _login(client, email="owner@alpha.example", password=PASSWORD, remote="10.0.0.1"):
    csrf = _login_form(client)
    return client.post("/admin/login", base_url=HTTPS, environ_base={"REMOTE_ADDR": remote},
                       data={"email": email, "password": password, "csrf_token": csrf, "next": "/admin/tickets"})


def _csrf(client) -> str:
    html = client.get("/admin/", base_url=HTTPS).get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)


def test_password_is_hashed_with_scrypt(app, user):
    with app.extensions["aftercare.db"].session() as session:
        stored = session.get(AdminUser, user)
    assert stored.email == "owner@alpha.example"
    assert stored.password_hash.startswith("scrypt:") and PASSWORD not in stored.password_hash


def test_sign_in_sets_a_secure_cookie_and_opens_the_merchants_admin(client, user):
    answer = _login(client)
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/tickets"
    cookie = next(h for h in answer.headers.getlist("Set-Cookie") if h.startswith("aftercare_admin="))
    assert {"Secure", "HttpOnly", "SameSite=Lax", "Path=/admin"} <= {p.strip() for p in cookie.split(";")}
    page = client.get("/admin/tickets", base_url=HTTPS)
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"].split(";")[0] == "frame-ancestors 'none'"
    assert "app-bridge.js" not in page.get_data(as_text=True)


def test_every_post_needs_the_csrf_token(client, user, app, tenants):
    _login(client)
    assert client.post("/admin/cac", base_url=HTTPS, data={"cac": "12"}).status_code == 400
    assert client.post("/admin/cac", base_url=HTTPS, data={"cac": "12", "csrf_token": "forged"}).status_code == 400
    with app.extensions["aftercare.db"].session() as session:
        assert session.get(Merchant, tenants[0].merchant_id).cac is None
    answer = client.post("/admin/cac", base_url=HTTPS, data={"cac": "12", "csrf_token": _csrf(client)})
    assert answer.status_code == 303
    with app.extensions["aftercare.db"].session() as session:
        assert session.get(Merchant, tenants[0].merchant_id).cac == Decimal("12")


def test_login_form_without_its_csrf_token_is_refused(client, user):
    client.get("/admin/login", base_url=HTTPS)
    answer = client.post("/admin/login", base_url=HTTPS, data={"email": "owner@alpha.example", "password": PASSWORD})
    assert answer.status_code == 400
    assert not any(h.startswith("aftercare_admin=") for h in answer.headers.getlist("Set-Cookie"))


def test_failed_logins_lock_the_account(client, user, app, clock):
    for attempt in range(1, MAX_FAILED_LOGINS):
        assert _login(client, password="wrong password!").status_code == 401
        with app.extensions["aftercare.db"].session() as session:
            assert session.get(AdminUser, user).failed_logins == attempt
    assert _login(client, password="wrong password!").status_code == 401
    with app.extensions["aftercare.db"].session() as session:
        assert session.get(AdminUser, user).locked_until == clock.now() + timedelta(minutes=15)
    locked = _login(client)
    assert locked.status_code == 401 and "Too many failed attempts" in locked.get_data(as_text=True)
    clock.advance(timedelta(minutes=16))
    assert _login(client).status_code == 303


def test_one_address_is_throttled_across_accounts(client, user):
    for n in range(20):
        assert _login(client, email=f"nobody{n}@example.com", remote="10.9.9.9").status_code == 401
    assert _login(client, remote="10.9.9.9").status_code == 429
    assert _login(client, remote="10.1.1.1").status_code == 303


def test_logout_clears_the_cookie_and_next_cannot_leave_the_admin(client, user):
    csrf = _login_form(client)
    answer = client.post("/admin/login", base_url=HTTPS, data={"email": "owner@alpha.example", "password": PASSWORD,
                                                               "csrf_token": csrf, "next": "https://evil.example/"})
    assert answer.headers["Location"] == "/admin/"
    out = client.post("/admin/logout", base_url=HTTPS, data={"csrf_token": _csrf(client)})
    assert out.status_code == 303
    assert client.get("/admin/", base_url=HTTPS).status_code == 302


def test_cli_creates_a_user_with_the_password_from_the_environment(database_url, app, tmp_path):
    env = {"AFTERCARE_DATABASE_URL": database_url, "AFTERCARE_SECRET_KEY": TEST_SECRET_KEY,
           "AFTERCARE_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY, "AFTERCARE_APP__INSTANCE_PATH": str(tmp_path),
           "AFTERCARE_ADMIN_PASSWORD": PASSWORD}
    result = CliRunner().invoke(main, ["admin", "create-user", "--email", "seller@amazon-only.example",
                                       "--merchant-name", "Amazon only"], env=env)
    assert result.exit_code == 0, result.output
    with app.extensions["aftercare.db"].session() as session:
        created = session.scalar(select(AdminUser).where(AdminUser.email == "seller@amazon-only.example"))
        assert session.get(Merchant, created.merchant_id).name == "Amazon only"
    short = CliRunner().invoke(main, ["admin", "create-user", "--email", "x@y.example"],
                               env={**env, "AFTERCARE_ADMIN_PASSWORD": "short"})
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    prompted = CliRunner().invoke(main, ["admin", "create-user", "--email", "p@y.example"],
                                  env={**env, "AFTERCARE_ADMIN_PASSWORD": ""}, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output


def test_a_new_amazon_only_seller_without_stores_sees_every_page(client, app):
    with app.extensions["aftercare.db"].session() as session:
        create_admin_user(session, "new@seller.example", PASSWORD, merchant_name="New seller")
    _login(client, email="new@seller.example")
    for path in ("/admin/", "/admin/reviews", "/admin/tickets", "/admin/messages", "/admin/customers",
                 "/admin/settings", "/admin/export/customers.csv"):
        assert client.get(path, base_url=HTTPS).status_code == 200, path
    flows = client.get("/admin/flows", base_url=HTTPS)
    assert flows.status_code == 303 and flows.headers["Location"].startswith("/admin/settings?notice=Connect")
