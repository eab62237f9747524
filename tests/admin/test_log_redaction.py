"""No live credential reaches a log line: the request log of the served app and our own lines keep the path and
the harmless parameters but show ``[redacted]`` for session tokens, OAuth codes, hmacs, states and signed links."""

from __future__ import annotations

import io
import logging
import re
import threading

import requests

from plugin.messaging import links
from sandbox.server import ServerThread
from tests.admin.seed import SHOP_A
from tests.conftest import TEST_SECRET_KEY

CODE, HMAC, STATE = "oauth-code-4f1e9a77", "9b8c7d6e5f4a3b2c1d0e", "state-nonce-31337"


def _log_stream() -> io.StringIO:
    """Point the app's log handler (the one create_app configured) at a buffer."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "aftercare")
    stream = io.StringIO()
    handler.setStream(stream)
    return stream


class _LastRequestLogged(logging.Handler):
    """Set an event once werkzeug logs the request line of the given path (written after the response is sent)."""

    def __init__(self, path: str):
        super().__init__(logging.INFO)
        self.path, self.done = path, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if f"GET {self.path}" in record.getMessage():
            self.done.set()


def test_request_log_and_our_lines_show_paths_but_no_credentials(app, tenants, token, clock, caplog):
    caplog.set_level(logging.INFO)
    stream = _log_stream()
    last = _LastRequestLogged("/s/")
    logging.getLogger("werkzeug").addHandler(last)
    session_token, bearer = token(), token(SHOP_A)
    link = links.make_token(TEST_SECRET_KEY, clock, "score", 987654, s=9)
    with ServerThread(app) as server:
        # Shopify opens the application URL with the session token; it is sent on to the admin.
        first = requests.get(f"{server.url}/?shop={SHOP_A}&host=YWRtaW4&id_token={session_token}", timeout=10)
        api = requests.get(f"{server.url}/admin/tickets", headers={"Authorization": f"Bearer {bearer}"}, timeout=10)
        callback = requests.get(f"{server.url}/auth/callback?code={CODE}&hmac={HMAC}&shop={SHOP_A}&state={STATE}"
                                "&timestamp=1772452800", timeout=10)
        survey = requests.get(f"{server.url}/s/{link}", timeout=10)
        # The server thread logs a request after answering it: wait for the last line, not for a fixed time.
        assert last.done.wait(timeout=30)
    logging.getLogger("werkzeug").removeHandler(last)
    assert [first.status_code, api.status_code, callback.status_code, survey.status_code] == [200, 200, 400, 410]
    logging.getLogger("aftercare.test").warning("retrying %s with Authorization: Bearer %s",
                                                f"{server.url}/admin/?id_token={session_token}", bearer)
    for text in (stream.getvalue(), caplog.text):
        for secret in (session_token, bearer, CODE, HMAC, STATE, link):
            assert secret not in text
    # werkzeug colours the request line by status (ANSI codes): compare the text.
    request_lines = [re.sub(r"\x1b\[[0-9;]*m", "", line.split("] ", 1)[1].split('"', 2)[1])
                     for line in stream.getvalue().splitlines() if " werkzeug " in line]
    assert request_lines == [
        f"GET /?shop={SHOP_A}&host=YWRtaW4&id_token=[redacted] HTTP/1.1",
        f"GET /admin/?shop={SHOP_A}&host=YWRtaW4&id_token=[redacted] HTTP/1.1",
        "GET /admin/tickets HTTP/1.1",
        f"GET /auth/callback?code=[redacted]&hmac=[redacted]&shop={SHOP_A}&state=[redacted]&timestamp=1772452800"
        " HTTP/1.1",
        "GET /s/[redacted] HTTP/1.1",
    ]
    assert caplog.records[-1].getMessage() == (f"retrying {server.url}/admin/?id_token=[redacted] with "
                                               "Authorization: Bearer [redacted]")
    rejected = [r for r in caplog.records if r.getMessage() == "oauth callback rejected"]
    assert [r.shop for r in rejected] == [SHOP_A]
