"""Settings: connected stores (Amazon connection), sender identity, the email brand (logo, accent colour, footer
line, with a preview) and each store's postal address, time zones and holiday/Ramadan countries, CSV exports
(streamed in keyset chunks) and customer data deletion."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import Response, abort, request, stream_with_context
from sqlalchemy import func, select

from connectors.amazon import marketplaces
from connectors.amazon.client import Credentials, SpApiSession
from connectors.amazon.connection import ConnectionProblem, check_connection
from plugin import flow_settings, get_clock, get_config, get_vault
from plugin.admin.blueprint import bp, ctx, done, failed, json_response, page
from plugin.admin.overview import overview_cache
from plugin.admin.sync_rejections import rejected_count
from plugin.config import ConfigError
from plugin.db import get_db, get_session
from plugin.messaging import locales, templates
from plugin.messaging.branding import (
    Brand,
    BrandRefused,
    brand_of,
    clean_accent_color,
    clean_footer,
    clean_logo_url,
    clean_postal_address,
)
from plugin.models import Customer, Merchant, Message, Order, Store
from plugin.secrets_store import set_credential
from plugin.webhooks.compliance import redact_customer
from plugin.webhooks.inbox import failed_count

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EXPORT_CHUNK = 2000
EXPORTS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "customers": (Customer, ("id", "store_id", "external_id", "email", "first_name", "locale", "country",
                             "time_zone", "marketing_consent", "marketing_consent_at", "redacted_at")),
    "orders": (Order, ("id", "store_id", "external_id", "name", "customer_id", "created_at_remote", "currency",
                       "total_price", "total_refunded", "financial_status", "fulfillment_status", "cancelled_at",
                       "fulfilled_at", "delivered_at")),
    "messages": (Message, ("id", "store_id", "customer_id", "order_id", "flow", "step", "channel", "status",
                           "skip_reason", "scheduled_for", "sent_at", "opened_at", "clicked_at", "to_address",
                           "subject")),
}


@bp.get("/settings")
def settings() -> Any:
    """Show connected stores, sender identity, time zones and quiet-day countries, exports and deletion."""
    context = ctx()
    session = get_session()
    merchant = session.get(Merchant, context.merchant_id)
    store = context.single_store()
    policy = flow_settings.effective(session, get_config(), store.id, "policy") if store else \
        flow_settings.defaults(get_config(), "policy")
    brand = brand_of(store, merchant) if store else Brand(store_name=merchant.name, logo_url=merchant.logo_url,
                                                          accent_color=merchant.accent_color,
                                                          footer_line=merchant.email_footer)
    return page("admin/settings.html", merchant=merchant, stores=context.stores, policy=policy,
                regions=("na", "eu", "fe"), exports=tuple(EXPORTS), brand_preview=_brand_preview(brand, store),
                failed_webhooks=failed_count(session, context.scope_ids),
                rejected_records=rejected_count(session, context.scope_ids))


# The email the brand preview shows: a marketing one, so it carries everything (logo, button, footer, address).
PREVIEW_FLOW, PREVIEW_STEP = "replenishment", "main"


def _brand_preview(brand: Brand, store: Store | None) -> templates.RenderedEmail:
    """Render the sample reminder with this brand in the store's language."""
    locale = locales.normalize(store.primary_locale if store else None) or locales.DEFAULT
    return templates.preview(PREVIEW_FLOW, PREVIEW_STEP, locale, brand=brand)


def _brand_form() -> dict[str, str | None]:
    """Read and validate the brand fields of the form (BrandRefused names the field in words)."""
    form = request.form
    return {"logo_url": clean_logo_url(form.get("logo_url")),
            "accent_color": clean_accent_color(form.get("accent_color")),
            "email_footer": clean_footer(form.get("email_footer"))}


@bp.post("/settings/brand")
def save_brand() -> Any:
    """Save the brand every email of the merchant carries: logo URL (https), accent colour, footer line."""
    merchant = get_session().get(Merchant, ctx().merchant_id)
    try:
        values = _brand_form()
    except BrandRefused as exc:
        return failed(f"The brand was not saved: {exc}")
    for key, value in values.items():
        setattr(merchant, key, value)
    return done("admin.settings", "Email brand saved.")


@bp.post("/settings/brand/preview")
def preview_brand() -> Any:
    """Render the sample email with the brand being typed (JSON for the live preview)."""
    context = ctx()
    store = context.single_store()
    merchant = get_session().get(Merchant, context.merchant_id)
    try:
        values = _brand_form()
    except BrandRefused as exc:
        return json_response({"ok": False, "field": exc.field, "error": str(exc)})
    saved = brand_of(store, merchant) if store else Brand(store_name=merchant.name)
    brand = Brand(store_name=saved.store_name, logo_url=values["logo_url"], accent_color=values["accent_color"],
                  footer_line=values["email_footer"], postal_address=saved.postal_address)
    rendered = _brand_preview(brand, store)
    return json_response({"ok": True, "subject": rendered.subject, "html": rendered.html, "text": rendered.text})


@bp.post("/settings/stores/<int:store_id>/address")
def save_postal_address(store_id: int) -> Any:
    """Save the postal address a store's emails carry; blank goes back to the shop's billing address."""
    store = next((s for s in ctx().stores if s.id == store_id), None)
    if store is None:
        abort(404)
    try:
        address = clean_postal_address(request.form.get("postal_address"))
    except BrandRefused as exc:
        return failed(f"The postal address was not saved: {exc}")
    name = store.name or store.external_id
    if address is None:
        # Back to Shopify's billing address, read again at the next sync.
        store.postal_address, store.postal_address_edited = None, False
        return done("admin.settings", f"Postal address of {name} cleared; the shop's billing address is used "
                                      "from the next sync.")
    store.postal_address, store.postal_address_edited = address, True
    return done("admin.settings", f"Postal address of {name} saved.")


@bp.post("/settings/sender")
def save_sender() -> Any:
    """Save the sender identity and the address that receives alerts and test emails."""
    merchant = get_session().get(Merchant, ctx().merchant_id)
    values = {k: (request.form.get(k) or "").strip() for k in ("sender_name", "sender_email", "reply_to",
                                                                "alert_email")}
    for key in ("sender_email", "reply_to", "alert_email"):
        if values[key] and not EMAIL_RE.match(values[key]):
            return failed(f"{key.replace('_', ' ').capitalize()} is not an email address.")
    if len(values["sender_name"]) > 255:
        return failed("The sender name is too long (255 characters at most).")
    for key, value in values.items():
        setattr(merchant, key, value or None)
    return done("admin.settings", "Sender identity saved.")


@bp.post("/settings/stores/<int:store_id>")
def save_store(store_id: int) -> Any:
    """Save a store's time zone and country (the country picks its national holidays)."""
    store = next((s for s in ctx().stores if s.id == store_id), None)
    if store is None:
        abort(404)
    zone = (request.form.get("timezone") or "").strip()
    country = (request.form.get("country") or "").strip().upper()
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return failed(f"Unknown time zone '{zone}'; use a name like Europe/Berlin.")
    if zone not in available_timezones() and zone != "UTC":
        return failed(f"Unknown time zone '{zone}'; use a name like Europe/Berlin.")
    if country and not re.fullmatch(r"[A-Z]{2}", country):
        return failed("The country must be a two-letter ISO code, e.g. DE.")
    store.timezone, store.country = zone, country or None
    return done("admin.settings", f"{store.name or store.external_id} saved.")


@bp.post("/settings/quiet-days")
def save_quiet_days() -> Any:
    """Save the holiday rule and the Ramadan rule countries for every store of the merchant."""
    context = ctx()
    countries = [c.strip().upper() for c in (request.form.get("ramadan_countries") or "").replace(";", ",")
                 .split(",") if c.strip()]
    if any(not re.fullmatch(r"[A-Z]{2}", c) for c in countries):
        return failed("Ramadan rule countries must be two-letter ISO codes separated by commas, e.g. AE, SA.")
    changes = {"respect_holidays": request.form.get("respect_holidays") in ("on", "true", "1"),
               "ramadan_countries": countries}
    try:
        for store_id in context.store_ids:
            flow_settings.update(get_session(), get_config(), store_id, "policy", changes)
    except ConfigError as exc:
        return failed(str(exc))
    return done("admin.settings", "Quiet days saved for every store.")


def check_amazon_connection(region: str, marketplace_ids: list[str], refresh_token: str) -> None:
    """Prove the refresh token works before storing it (the Amazon connector's check); ValueError otherwise."""
    config = get_config()
    if not (config.secrets.lwa_client_id and config.secrets.lwa_client_secret):
        raise ValueError("the operator has not set AFTERCARE_LWA_CLIENT_ID and AFTERCARE_LWA_CLIENT_SECRET")
    clock = get_clock()
    # Two attempts at most: the merchant is waiting on this page.
    session = SpApiSession(Credentials(config.secrets.lwa_client_id, config.secrets.lwa_client_secret, refresh_token),
                           region=region, endpoint=config.get("amazon.endpoint"),
                           lwa_token_url=config.get("amazon.lwa_token_url"), clock=clock, sleep=time.sleep,
                           timeout=min(15.0, config.get("amazon.request_timeout_seconds")),
                           max_attempts=2, backoff_seconds=1.0)
    try:
        with session:
            check_connection(session, marketplace_ids, clock.now())
    except ConnectionProblem as exc:
        raise ValueError(f"Amazon refused the connection: {exc}") from exc


def connect_amazon(session: Any, merchant_id: int, seller_id: str, region: str, countries: list[str],
                   refresh_token: str, name: str) -> Store:
    """Create (or update) the Amazon store of a seller in a region with its encrypted LWA refresh token."""
    if not re.fullmatch(r"[A-Z0-9]{2,20}", seller_id):
        raise ValueError("the seller id is capital letters and digits (Seller Central > Account info)")
    if region not in ("na", "eu", "fe"):
        raise ValueError("the region must be na, eu or fe")
    if not refresh_token.startswith("Atzr|"):
        raise ValueError("the LWA refresh token starts with Atzr| (from your app's authorization)")
    ids = marketplaces.resolve(countries, region)
    check_amazon_connection(region, ids, refresh_token)
    external = f"{seller_id}:{region}"
    store = session.scalar(select(Store).where(Store.platform == "amazon", Store.external_id == external))
    if store is not None and store.merchant_id != merchant_id:
        raise ValueError("this seller account is connected to another merchant")
    if store is None:
        store = Store(merchant_id=merchant_id, platform="amazon", external_id=external, region=region)
        session.add(store)
    store.marketplace_ids, store.name, store.status = ids, name or f"Amazon {region.upper()}", "active"
    store.installed_at, store.uninstalled_at = store.installed_at or get_clock().now(), None
    country = marketplaces.country_of(ids[0])
    store.country = store.country or country
    set_credential(store, get_vault(), "refresh_token_enc", refresh_token)
    session.flush()
    return store


@bp.post("/settings/amazon")
def add_amazon() -> Any:
    """Connect an Amazon seller account in one region."""
    context = ctx()
    form = request.form
    try:
        store = connect_amazon(get_session(), context.merchant_id, (form.get("seller_id") or "").strip().upper(),
                               (form.get("region") or "").strip().lower(),
                               (form.get("marketplaces") or "").replace(";", ",").split(","),
                               (form.get("refresh_token") or "").strip(), (form.get("name") or "").strip())
    except ValueError as exc:
        return failed(f"The seller account was not connected: {exc}.")
    overview_cache().drop_merchant(context.merchant_id)
    return done("admin.settings", f"{store.name} connected; orders sync on the next run.")


@bp.post("/settings/delete-customer")
def delete_by_email() -> Any:
    """Erase a customer's personal data in every store of the merchant, found by email address."""
    context = ctx()
    email = (request.form.get("email") or "").strip()
    if not EMAIL_RE.match(email):
        return failed("Enter the customer's email address.")
    if request.form.get("confirm") != "erase":
        return failed("Type erase to confirm.")
    session = get_session()
    erased = 0
    for store in context.stores:
        customer = session.scalar(select(Customer).where(Customer.store_id == store.id,
                                                         func.lower(Customer.email) == email.lower()).limit(1))
        if customer is None:
            continue
        redact_customer(session, store, store.external_id,
                        {"customer": {"id": customer.external_id, "email": customer.email}, "orders_to_redact": []},
                        get_clock().now())
        erased += 1
    if not erased:
        return failed("No customer with this email address in your stores.")
    overview_cache().drop_merchant(context.merchant_id)
    return done("admin.settings", f"Personal data erased in {erased} store(s).")


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    # Spreadsheet formula injection: a cell starting with = + - @ is shown as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def export_rows(model: Any, columns: tuple[str, ...], store_ids: list[int]) -> Iterator[str]:
    """Yield CSV text in keyset chunks, each read in its own short transaction."""
    database = get_db()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    yield buffer.getvalue()
    last = 0
    cols = [getattr(model, c) for c in columns]
    while True:
        buffer.seek(0)
        buffer.truncate()
        with database.sessionmaker() as session:
            rows = session.execute(select(*cols).where(model.store_id.in_(store_ids), model.id > last)
                                   .order_by(model.id).limit(EXPORT_CHUNK)).all()
        if not rows:
            return
        for row in rows:
            writer.writerow([_csv_value(v) for v in row])
        last = rows[-1][0]
        yield buffer.getvalue()


@bp.get("/export/<kind>.csv")
def export(kind: str) -> Response:
    """Stream a CSV of the merchant's customers, orders or messages (the selected store, or all)."""
    if kind not in EXPORTS:
        abort(404)
    model, columns = EXPORTS[kind]
    store_ids = list(ctx().scope_ids)
    stamp = get_clock().now().strftime("%Y%m%d")
    return Response(stream_with_context(export_rows(model, columns, store_ids)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="aftercare-{kind}-{stamp}.csv"'})
