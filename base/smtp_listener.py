"""An aiosmtpd Controller that can listen on port 0, shared by the unsubscribe mailbox and the SMTP sandbox."""

from __future__ import annotations

from aiosmtpd.controller import Controller


class AnyPortController(Controller):
    """aiosmtpd's Controller, able to listen on port 0 (a free port, learnt before its start-up self-check)."""

    def _trigger_server(self) -> None:
        # aiosmtpd's self-check connects to ``self.port``; with port 0 that is the port the OS just chose.
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()
