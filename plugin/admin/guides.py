"""Guides page: the merchant's usage guides and care tips per product, collection or product type, in many
languages, with a live preview of the email in the chosen language, the shipped starters, and a test send."""

from __future__ import annotations

from typing import Any

from flask import abort, request
from sqlalchemy import delete, select

from plugin import get_clock
from plugin.admin.blueprint import bp, ctx, done, failed, get_scoped, json_response, page
from plugin.admin.flows import _brand, merchant_address
from plugin.db import get_session
from plugin.guides import STARTERS, GuideRefused, clean_block, guide_vars, new_from_starter, offer_findings
from plugin.messaging import locales, templates
from plugin.messaging.outbox import enqueue, idempotency_key
from plugin.models import GuideBlock, Merchant, Product, ProductCollection, Store
from plugin.sync.collections import store_collections

# The product picker lists at most this many products (newest first); a bigger catalogue uses product types.
PRODUCT_CHOICES = 1000


def _store() -> Store:
    store = ctx().single_store()
    if store is None or store.platform != "shopify":
        abort(404)
    return store


def _block(block_id: int) -> GuideBlock:
    block = get_scoped(GuideBlock, block_id)
    if block.store_id != _store().id:
        abort(404)
    return block


def _target_label(session: Any, block: GuideBlock) -> str:
    if block.target_kind == "product" and block.target.isdigit():
        product = session.get(Product, int(block.target))
        return f"Product: {product.title if product else '(deleted product)'}"
    if block.target_kind == "collection":
        title = session.scalar(select(ProductCollection.collection_title).where(
            ProductCollection.store_id == block.store_id,
            ProductCollection.collection_external_id == block.target).limit(1))
        return f"Collection: {title or '(collection with no synced product)'}"
    return f"Product type: {block.target}"


@bp.get("/guides")
def guides() -> Any:
    """List the store's guides with their target, delay, languages and class (service or marketing)."""
    store = _store()
    session = get_session()
    rows = []
    for block in session.scalars(select(GuideBlock).where(GuideBlock.store_id == store.id).order_by(GuideBlock.id)):
        rows.append({"id": block.id, "name": block.name or _target_label(session, block),
                     "target": _target_label(session, block), "days": _days(block.days_after_delivery),
                     "enabled": block.enabled, "locales": sorted(block.texts or {}),
                     "offers": offer_findings(block.texts or {})})
    return page("admin/guides.html", store=store, guides=rows, starters=STARTERS)


def _days(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


@bp.post("/guides/starter")
def new_starter() -> Any:
    """Add a guide from a shipped starter text (in every language, switched off until the merchant checks it)."""
    store = _store()
    name = request.form.get("starter", "")
    if name not in STARTERS:
        return failed("Choose one of the starter texts.")
    block = new_from_starter(get_session(), store.id, name)
    return done("admin.guide_detail", "Starter added: check the product type and the words, then switch it on.",
                block_id=block.id, store=store.id)


def _editor(store: Store, block: GuideBlock | None) -> dict[str, Any]:
    session = get_session()
    locale = locales.normalize(request.args.get("locale")) or locales.normalize(store.primary_locale) or "en"
    texts = (block.texts if block else None) or {}
    text = texts.get(locale) or {"title": "", "html": ""}
    products = session.execute(select(Product.id, Product.title).where(Product.store_id == store.id)
                               .order_by(Product.id.desc()).limit(PRODUCT_CHOICES)).all()
    types = [t for (t,) in session.execute(select(Product.product_type).distinct().where(
        Product.store_id == store.id, Product.product_type.is_not(None), Product.product_type != "")
        .order_by(Product.product_type).limit(PRODUCT_CHOICES))]
    preview_subject = preview_html = preview_error = ""
    if block is not None:
        try:
            rendered = _render(store, block.texts or {}, block.image_urls or [], block.video_url, locale)
            preview_subject, preview_html = rendered.subject, rendered.html
        except (templates.TemplateRefused, GuideRefused) as exc:
            preview_error = str(exc)
    return {"locale": locale, "direction": locales.direction(locale), "locales": locales.SUPPORTED, "text": text,
            "written": sorted(texts), "products": products, "types": types,
            "collections": store_collections(session, store.id), "preview_subject": preview_subject,
            "preview_html": preview_html, "preview_error": preview_error,
            "offers": offer_findings(texts)}


@bp.get("/guides/new")
def guide_new() -> Any:
    """Show an empty guide editor."""
    store = _store()
    return page("admin/guide_detail.html", store=store, block=None, editor=_editor(store, None))


@bp.get("/guides/<int:block_id>")
def guide_detail(block_id: int) -> Any:
    """Show one guide's editor in a language, with the preview of its email in that language."""
    store = _store()
    block = _block(block_id)
    return page("admin/guide_detail.html", store=store, block=block, editor=_editor(store, block))


def _form_fields(existing: dict[str, Any]) -> dict[str, Any]:
    """Read the editor's form: the edited language's text merged into the block's other languages."""
    form = request.form
    locale = locales.normalize(form.get("locale")) or "en"
    texts = {k: dict(v) for k, v in existing.items()}
    title, body = form.get("title") or "", form.get("html") or ""
    if title.strip() or body.strip():
        texts[locale] = {"title": title, "html": body}
    else:
        texts.pop(locale, None)
    kind = form.get("target_kind") or "product_type"
    target = {"product": form.get("target_product"),
              "collection": form.get("target_collection")}.get(kind, form.get("target_type"))
    try:
        days = float(form.get("days_after_delivery") or 2)
    except ValueError:
        raise GuideRefused("Days after delivery must be a number.") from None
    return clean_block(target_kind=kind, target=target or "", texts=texts,
                       image_urls=(form.get("image_urls") or "").splitlines(), video_url=form.get("video_url"),
                       days_after_delivery=days)


def _render(store: Store, texts: dict[str, Any], images: list[str], video: str | None, locale: str) -> Any:
    """Render the usage-guide email with this guide for a sample customer in ``locale``."""
    sample = GuideBlock(texts=texts, image_urls=images, video_url=video)
    context = templates.sample_context("usage_guide", "main", locale, _brand())
    context["guides"] = [guide_vars(sample, "Your product", locale, store.primary_locale)]
    source = templates.get_source(get_session(), store.id, "usage_guide", "main", locale)
    return templates.render_email("usage_guide", source, context, locale, _brand())


@bp.post("/guides/preview")
def guide_preview() -> Any:
    """Render the guide being typed into its email, in the chosen language (JSON for the live preview)."""
    store = _store()
    existing: dict[str, Any] = {}
    raw_id = request.form.get("block_id") or ""
    if raw_id.isdigit():
        existing = _block(int(raw_id)).texts or {}
    locale = locales.normalize(request.form.get("locale")) or "en"
    try:
        fields = _form_fields(existing)
        rendered = _render(store, fields["texts"], fields["image_urls"], fields["video_url"], locale)
    except (GuideRefused, templates.TemplateRefused) as exc:
        return json_response({"ok": False, "error": str(exc)})
    findings = offer_findings(fields["texts"])
    return json_response({"ok": True, "subject": rendered.subject, "html": rendered.html, "text": rendered.text,
                          "marketing": bool(findings), "offers": findings})


def _save(block: GuideBlock | None) -> Any:
    store = _store()
    session = get_session()
    try:
        fields = _form_fields((block.texts if block else None) or {})
    except GuideRefused as exc:
        return failed(f"The guide was not saved: {exc}")
    if fields["target_kind"] == "product":
        if not fields["target"].isdigit() or session.scalar(select(Product.id).where(
                Product.id == int(fields["target"]), Product.store_id == store.id)) is None:
            return failed("The guide was not saved: choose one of the store's products.")
    if fields["target_kind"] == "collection" and fields["target"] not in {
            ext for ext, _title in store_collections(session, store.id)}:
        return failed("The guide was not saved: choose one of the store's collections.")
    if block is None:
        block = GuideBlock(store_id=store.id)
        session.add(block)
    for key, value in fields.items():
        setattr(block, key, value)
    block.name = (request.form.get("name") or "").strip()[:255]
    block.enabled = request.form.get("enabled") in ("on", "true", "1")
    session.flush()
    findings = offer_findings(block.texts)
    notice = "Guide saved." if not findings else (
        f"Guide saved. It holds an offer or a recommendation ({', '.join(findings)}): it is sent as marketing, only "
        "to customers who consented.")
    return done("admin.guide_detail", notice, block_id=block.id, store=store.id,
                locale=locales.normalize(request.form.get("locale")) or "en")


@bp.post("/guides")
def guide_create() -> Any:
    """Save a new guide."""
    return _save(None)


@bp.post("/guides/<int:block_id>")
def guide_save(block_id: int) -> Any:
    """Save a guide's fields and the text of the language being edited."""
    return _save(_block(block_id))


@bp.post("/guides/<int:block_id>/delete")
def guide_delete(block_id: int) -> Any:
    """Delete a guide (emails already written leave it out when they are sent)."""
    block = _block(block_id)
    store_id = block.store_id
    get_session().execute(delete(GuideBlock).where(GuideBlock.id == block.id))
    return done("admin.guides", "Guide deleted.", store=store_id)


@bp.post("/guides/<int:block_id>/test-send")
def guide_test_send(block_id: int) -> Any:
    """Queue this guide's email in the chosen language to the merchant through the outbox."""
    context = ctx()
    block = _block(block_id)
    session = get_session()
    merchant = session.get(Merchant, context.merchant_id)
    address = merchant_address(merchant, context.user_email)
    if not address:
        return failed("Add an alert or sender email address in Settings first, so we know where to send the test.")
    now = get_clock().now()
    locale = locales.normalize(request.form.get("locale")) or "en"
    key = idempotency_key(block.store_id, "test", f"guide={block.id}", f"at={now.isoformat()}")
    title = _target_label(session, block).split(": ", 1)[1]
    enqueue(session, store_id=block.store_id, flow="test", channel="email", idempotency_key=key, scheduled_for=now,
            to_address=address, locale=locale,
            payload={"about_flow": "usage_guide", "guide_block_id": block.id, "product_title": title})
    return done("admin.guide_detail", f"Test email queued to {address}.", block_id=block.id, store=block.store_id,
                locale=locale)
