"""`GET /healthz` for load balancers: the database answers and the schema is at the latest migration."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from plugin.db import get_db
from plugin.migrate import current_revision, head_revision

bp = Blueprint("health", __name__)
log = logging.getLogger("aftercare.health")


@bp.get("/healthz")
def healthz():  # noqa: ANN201
    """Answer 200 when the database is reachable and migrated to head, else 503 with what is wrong."""
    db = get_db()
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = current_revision(conn)
    except SQLAlchemyError as exc:
        log.warning("health check failed", extra={"error": type(exc).__name__})
        return jsonify(status="error", database="unreachable"), 503
    head = head_revision()
    if current != head:
        return jsonify(status="error", database="ok", migrations="behind", current=current, head=head), 503
    return jsonify(status="ok", database="ok", migrations="head", revision=head), 200
