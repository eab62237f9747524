"""Failed webhooks: deliveries from Shopify that could not be applied, with the reason, newest first.

A body that can never be applied (not JSON, a required field missing) fails at once; a transient error fails
after the inbox's last attempt (plugin.webhooks.inbox). The sync fetches the same orders, customers and
products anyway, so the list says what was missed in the meantime and whether a code fix is needed.
"""

from __future__ import annotations

from typing import Any

from flask import abort, request

from plugin.admin.blueprint import PAGE_SIZE, bp, ctx, page
from plugin.db import get_session
from plugin.webhooks.inbox import MAX_ATTEMPTS, failed_count, failed_events


@bp.get("/webhooks/failed")
def failed_webhooks() -> Any:
    """List the selected stores' failed webhooks (keyset pages)."""
    context = ctx()
    raw = request.args.get("before", "")
    if raw and not raw.isdigit():
        abort(400)
    session = get_session()
    rows = failed_events(session, context.scope_ids, PAGE_SIZE + 1, int(raw) if raw else None)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return page("admin/webhooks.html", events=rows, more=more, next_before=rows[-1].id if rows else None,
                total=failed_count(session, context.scope_ids), max_attempts=MAX_ATTEMPTS,
                store_names={s.id: s.name or s.external_id for s in context.stores})
