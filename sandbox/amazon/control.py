"""Control routes under ``/__sandbox/`` for the demo and out-of-process tests (loopback only)."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from .http import ApiError, iso, json_body, json_response


def answer(sandbox: Any, request: Request, action: str) -> Response:
    """Serve the control routes the demo and out-of-process tests use (loopback only)."""
    try:
        body = json_body(request.get_data()) if request.method == "POST" else {}
        if action == "sellers" and request.method == "GET":
            return json_response(200, [{"seller_id": s.seller_id, "name": s.name,
                                        "marketplace_ids": s.marketplace_ids} for s in sandbox.sellers])
        if action == "refresh-token" and request.method == "POST":
            token = sandbox.issue_refresh_token(str(body["seller_id"]))
            return json_response(200, {"client_id": sandbox.client_id, "client_secret": sandbox.client_secret,
                                       "refresh_token": token})
        if action == "faults" and request.method == "POST":
            sandbox.set_faults(float(body.get("rate", 0)), body.get("kinds"), body.get("seed"))
            return json_response(200, {"rate": sandbox.faults.config.rate, "kinds": list(sandbox.faults.config.kinds)})
        if action == "solicitations" and request.method == "GET":
            return json_response(200, [{"order_id": r.order_id, "marketplace_id": r.marketplace_id,
                                        "seller_id": r.seller_id, "sent_at": iso(r.sent_at)}
                                       for r in sandbox.solicitations.records])
    except (KeyError, ValueError, TypeError, StopIteration) as exc:
        return json_response(400, {"error": f"bad control request: {exc!r}"})
    except ApiError as exc:
        return json_response(400, {"error": exc.message})
    return json_response(404, {"error": f"unknown control route {request.method} /__sandbox/{action}"})
