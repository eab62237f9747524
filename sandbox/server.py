"""Run a WSGI app on a loopback port in a background thread (tests, the demo and `aftercare sandbox`)."""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server


class ServerThread:
    """Serve one WSGI application on 127.0.0.1 in a daemon thread; port 0 picks a free port."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, threaded: bool = True):
        self.app = app
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=threaded)
        self.host = host
        self.port = self._server.server_port
        # A short poll interval keeps shutdown (one per test) quick.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"sandbox:{self.port}", daemon=True)

    @property
    def url(self) -> str:
        """Return the base URL, e.g. ``http://127.0.0.1:9001``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        """Start serving and return self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end (safe on a server that never started)."""
        if self._thread.is_alive():
            # shutdown() waits for serve_forever() to notice; it would hang if it never ran.
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (used by `aftercare sandbox ...`)."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()
