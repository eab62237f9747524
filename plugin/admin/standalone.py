"""Standalone sign-in for Amazon-only sellers and self-hosters: hashed passwords, account lock, per-address
throttle, CSRF on the form, and a signed cookie (Secure, HttpOnly, SameSite=Lax)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, make_response, redirect, render_template, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from plugin import cookies_secure, get_clock
from plugin.admin.blueprint import bp, ctx
from plugin.admin.security import (
    clear_session_cookie,
    login_throttle,
    make_cookie_value,
    new_csrf_token,
    set_session_cookie,
)
from plugin.db import get_session
from plugin.models import AdminUser, Merchant

MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15
MIN_PASSWORD_LENGTH = 12
# A real hash to check against when the email is unknown, so both paths cost the same time.
_DUMMY_HASH = generate_password_hash("aftercare-timing-equaliser", method="scrypt")


def hash_password(password: str) -> str:
    """Hash a password with scrypt (werkzeug)."""
    return generate_password_hash(password, method="scrypt")


def create_admin_user(session: Session, email: str, password: str, merchant_id: int | None = None,
                      merchant_name: str | None = None) -> AdminUser:
    """Create a standalone admin user (and its merchant when none is given); ValueError on bad input."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise ValueError("a valid email address is needed")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(AdminUser.id).where(AdminUser.email == email)) is not None:
        raise ValueError(f"a user with the email {email} exists already")
    if merchant_id is None:
        merchant = Merchant(name=merchant_name or email.split("@", 1)[1], settings={})
        session.add(merchant)
        session.flush()
        merchant_id = merchant.id
    elif session.get(Merchant, merchant_id) is None:
        raise ValueError(f"merchant {merchant_id} does not exist")
    user = AdminUser(merchant_id=merchant_id, email=email, password_hash=hash_password(password), failed_logins=0)
    session.add(user)
    session.flush()
    return user


def check_login(session: Session, email: str, password: str, now: datetime) -> tuple[AdminUser | None, str]:
    """Check credentials, counting failures on the account; return (user, "") or (None, reason)."""
    user = session.scalar(select(AdminUser).where(AdminUser.email == email.strip().lower()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None, "Wrong email or password."
    if user.locked_until is not None and user.locked_until > now:
        return None, "Too many failed attempts. Try again in a few minutes."
    if not check_password_hash(user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + timedelta(minutes=LOCK_MINUTES)
            user.failed_logins = 0
        return None, "Wrong email or password."
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    return user, ""


def _login_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="aftercare-admin-login-form")


def _safe_next(target: str | None) -> str:
    """Only local admin paths are followed after sign-in (no open redirect)."""
    if not target:
        return url_for("admin.overview")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin") or target.startswith("//"):
        return url_for("admin.overview")
    return target


def _login_page(error: str | None = None, status: int = 200) -> Any:
    # Double-submit: the form token is signed and also set in a short-lived cookie.
    token = new_csrf_token()
    body = render_template("admin/login.html", error=error, csrf=_login_serializer().dumps(token),
                           next=request.values.get("next", ""))
    response = make_response(body, status)
    response.set_cookie("aftercare_login_csrf", token, max_age=3600, secure=cookies_secure(),
                        httponly=True, samesite="Lax", path="/admin")
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Show the sign-in form, or check the credentials and start a standalone session."""
    if request.method == "GET":
        return _login_page()
    try:
        sent = _login_serializer().loads(request.form.get("csrf_token", ""), max_age=3600)
    except BadSignature:
        sent = None
    if not sent or sent != request.cookies.get("aftercare_login_csrf"):
        return _login_page("The form expired. Please try again.", 400)
    address = request.remote_addr or "unknown"
    now = get_clock().now()
    throttle = login_throttle()
    if throttle.blocked(address, now.timestamp()):
        return _login_page("Too many failed attempts from your network. Try again later.", 429)
    session = get_session()
    user, reason = check_login(session, request.form.get("email", ""), request.form.get("password", ""), now)
    if user is None:
        throttle.failed(address, now.timestamp())
        # Commit the failure count: the request's session only commits on success statuses.
        session.commit()
        return _login_page(reason, 401)
    throttle.succeeded(address)
    response = redirect(_safe_next(request.form.get("next")), code=303)
    set_session_cookie(response, make_cookie_value(user, new_csrf_token()))
    response.delete_cookie("aftercare_login_csrf", path="/admin", secure=cookies_secure(), httponly=True,
                           samesite="Lax")
    return response


@bp.post("/logout")
def logout() -> Any:
    """End the standalone session."""
    ctx()
    response = redirect(url_for("admin.login"), code=303)
    clear_session_cookie(response)
    return response
