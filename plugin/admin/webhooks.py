"""Failed webhooks: deliveries from Shopify that could not be applied, with the reason, newest first.

A body that can never be applied (not JSON, a required field missing) fails at once; a transient error fails
after the inbox's last attempt (plugin.webhooks.inbox). The sync fetches the same orders, customers and
products anyway, so the list says what was missed in the meantime and whether a code fix is needed.
"""

from __future__ import annotations

from typing import Any

from plugin.admin.blueprint import bp, ctx, keyset_page, page
from plugin.db import get_session
from plugin.webhooks.inbox import MAX_ATTEMPTS, failed_count, failed_events


@bp.get("/webhooks/failed")
def failed_webhooks() -> Any:
    """List the selected stores' failed webhooks (keyset pages)."""
    context = ctx()
    session = get_session()
    rows, more, next_before = keyset_page(lambda limit, before: failed_events(session, context.scope_ids, limit,
                                                                                before))
    return page("admin/webhooks.html", events=rows, more=more, next_before=next_before,
                total=failed_count(session, context.scope_ids), max_attempts=MAX_ATTEMPTS,
                store_names={s.id: s.name or s.external_id for s in context.stores})
