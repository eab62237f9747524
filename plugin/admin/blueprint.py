"""The admin blueprint: authentication of every request, store scope, and the helpers pages share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from plugin import get_clock, get_config
from plugin.admin.security import (
    COOKIE_NAME,
    RETRY_HEADER,
    AdminContext,
    InstallFailed,
    NotAuthenticated,
    authenticate_embedded,
    authenticate_standalone,
    bearer_token,
    check_csrf,
    is_fetch,
    security_headers,
)
from plugin.auth.shop_domain import normalise_shop_domain
from plugin.db import get_session

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates",
               static_folder="static", static_url_path="/static")

# Endpoints reachable without a signed-in merchant.
PUBLIC_ENDPOINTS = frozenset({"admin.login", "admin.static"})
PAGE_SIZE = 50
# The app's navigation (s-app-nav: the admin's sidebar when embedded, the app's tab bar otherwise): endpoint,
# label, and the endpoints of pages under it (they mark the item current). Overview is the home link.
NAV_ITEMS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("admin.flows", "Flows", ("admin.flow_detail", "admin.flow_report", "admin.guides", "admin.guide_detail",
                              "admin.guide_new", "admin.calendar")),
    ("admin.reviews", "Reviews", ()),
    ("admin.tickets_list", "Tickets", ("admin.ticket_detail",)),
    ("admin.deliveries", "Deliveries", ()),
    ("admin.messages", "Messages", ()),
    ("admin.customers", "Customers", ("admin.customer_detail",)),
    ("admin.settings", "Settings", ("admin.failed_webhooks", "admin.rejected_records")),
)

T = TypeVar("T")

bp.after_request(security_headers)


def ctx() -> AdminContext:
    """Return the authenticated admin context of this request."""
    return g.admin


@bp.before_request
def _authenticate() -> Any:
    """Authenticate every admin request; refuse what carries no valid token or cookie."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    session = get_session()
    token = bearer_token(request)
    try:
        if token:
            context = authenticate_embedded(session, token)
        elif request.cookies.get(COOKIE_NAME):
            context = authenticate_standalone(session, request.cookies[COOKIE_NAME])
        else:
            raise NotAuthenticated("missing session token")
    except NotAuthenticated as exc:
        return _refuse(exc.reason, exc.shop)
    except InstallFailed:
        return render_template("admin/unavailable.html", reason="Shopify did not grant access to the store yet. "
                               "Open the app again from your Shopify admin.", **_bare_page()), 502
    if request.method == "POST" and context.mode == "standalone" and not check_csrf(context, request):
        return _error("The form expired. Reload the page and try again.", 400)
    context.selected_id = _selected_store(context)
    g.admin = context
    return None


def _selected_store(context: AdminContext) -> int | None:
    raw = request.values.get("store", "")
    if raw in ("", "all"):
        return None
    try:
        wanted = int(raw)
    except ValueError:
        abort(404)
    if wanted not in context.store_ids:
        abort(404)
    return wanted


def _bare_page() -> dict[str, Any]:
    """Template variables for pages shown before authentication."""
    config = get_config()
    shop = normalise_shop_domain(request.args.get("shop"))
    return {"api_key": config.secrets.shopify_api_key or config.get("shopify.client_id"),
            "app_bridge_url": config.get("shopify.app_bridge_url"), "shop": shop,
            "embedded": bool(config.get("shopify.embedded"))}


def _refuse(reason: str, shop: str | None = None) -> Any:
    """Answer a request without valid credentials: 401 + retry header for fetch, a friendly page otherwise."""
    if is_fetch(request) or request.method != "GET":
        response = jsonify(error="invalid session", reason=reason)
        response.status_code = 401
        response.headers[RETRY_HEADER] = "1"
        return response
    page = _bare_page()
    if not page["shop"] and not request.args.get("host") and not request.args.get("id_token"):
        # Not opened from Shopify at all: the standalone sign-in.
        return redirect(url_for("admin.login", next=request.full_path if request.args else request.path))
    return render_template("admin/unavailable.html", reason=reason, bounce=True, **page), 401


def _error(message: str, status: int = 400) -> Any:
    if is_fetch(request) or ctx_or_none() is None or ctx_or_none().mode == "embedded":
        return jsonify(error=message), status
    return render_template("admin/unavailable.html", reason=message, **_bare_page()), status


def ctx_or_none() -> AdminContext | None:
    """Return the admin context when the request is authenticated."""
    return g.get("admin")


def get_scoped(model: type[T], object_id: int, store_ids: list[int] | None = None) -> T:
    """Load a row by id only when it belongs to one of the merchant's stores; 404 otherwise."""
    ids = store_ids if store_ids is not None else ctx().store_ids
    row = get_session().scalar(select(model).where(model.id == object_id, model.store_id.in_(ids)))  # type: ignore[attr-defined]
    if row is None:
        abort(404)
    return row


def admin_url(endpoint: str, **values: Any) -> str:
    """Build an admin URL keeping the store switch (the JS adds a fresh session token)."""
    context = ctx_or_none()
    if context is not None and context.selected_id is not None and "store" not in values:
        values["store"] = context.selected_id
    if values.get("store") == "all":
        values.pop("store")
    if context is not None and context.mode == "embedded":
        if context.shop:
            values.setdefault("shop", context.shop)
        host = request.args.get("host")
        if host:
            values.setdefault("host", host)
    return url_for(endpoint, **{k: v for k, v in values.items() if v not in (None, "")})


def keyset_page(fetch: Callable[[int, int | None], list[Any]]) -> tuple[list[Any], bool, int | None]:
    """Read one keyset page by id (``?before=<id>``): the rows, whether more follow, the next ``before``."""
    raw = request.args.get("before", "")
    if raw and not raw.isdigit():
        abort(400)
    rows = fetch(PAGE_SIZE + 1, int(raw) if raw else None)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return rows, more, rows[-1].id if rows else None


def page(template: str, **values: Any) -> str:
    """Render an admin page with the layout's variables."""
    context = ctx()
    config = get_config()
    return render_template(
        template, admin=context, now=get_clock().now(), admin_url=admin_url, embedded=context.mode == "embedded",
        api_key=config.secrets.shopify_api_key or config.get("shopify.client_id"),
        app_bridge_url=config.get("shopify.app_bridge_url"), polaris_url=config.get("shopify.polaris_url"),
        shop=context.shop, nav_items=NAV_ITEMS, **values)


def done(endpoint: str, message: str, **values: Any) -> Any:
    """Finish a form POST: JSON for fetch (the JS navigates), a 303 redirect for plain forms."""
    target = admin_url(endpoint, **values)
    target += ("&" if "?" in target else "?") + urlencode({"notice": message})
    if is_fetch(request):
        return jsonify(ok=True, message=message, redirect=target)
    return redirect(target, code=303)


def failed(message: str, status: int = 400) -> Any:
    """Refuse a form POST with a message the merchant can act on (nothing was changed)."""
    return _error(message, status)


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    """Return JSON."""
    response = jsonify(payload)
    response.status_code = status
    return response
