"""The edge's HTTP server: uvicorn, guarded against clients that hold connections open.

uvicorn times out idle keep-alive connections but not a request whose headers or body
trickle in (a "slowloris"), and it accepts connections until the process runs out of file
descriptors, at which point the public port, the admin port and the log all suffer. This
protocol adds, per connection:

* a header deadline (``EDGE_HEADER_TIMEOUT_S``) from the first byte of each request (and from
  the connection's opening) to the end of its headers;
* a body deadline (``EDGE_BODY_TIMEOUT_S``) from the end of the headers to the end of the body;
* a cap on open connections per listener (``EDGE_MAX_CONNECTIONS``, lowered to fit the file
  descriptor limit): one over it is answered 503 at once and closed.

A connection that misses a deadline gets 408 (if nothing was answered yet) and is closed.
Each is counted (``sentiedge_slow_clients_total``) and logged as a rate-limited warning.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import time
from collections.abc import Callable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("edge_node")

FD_RESERVE = 128  # descriptors kept for the store, the model, the admin listener and the sync stream
TIMEOUT_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
               b"content-length: %d\r\n\r\n%s")
BUSY_503 = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
            b"connection: close\r\ncontent-length: %d\r\n\r\n%s")


def _body(code: str, message: str) -> bytes:
    return (f'{{"error": "{code}", "message": "{message}", "field": null}}').encode()


class RateLimitedLog:
    """At most one line per ``every_s`` per kind of event, saying how many were folded in."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._folded: dict[str, int] = {}

    def warning(self, kind: str, message: str) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -self.every_s) < self.every_s:
            self._folded[kind] = self._folded.get(kind, 0) + 1
            return
        folded = self._folded.pop(kind, 0)
        self._last[kind] = now
        log.warning("%s%s", message, f" ({folded} more since the last warning)" if folded else "")


class Guard:
    """The limits one listener enforces, and what it tells the node about them."""

    def __init__(self, *, header_timeout_s: float, body_timeout_s: float, max_connections: int,
                 on_refused: Callable[[str], None] = lambda what: None) -> None:
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self.max_connections = max_connections
        self.on_refused = on_refused
        self.warnings = RateLimitedLog()

    def protocol(self) -> type[HttpToolsProtocol]:
        guard = self

        class GuardedProtocol(HttpToolsProtocol):
            _deadline: asyncio.TimerHandle | None = None

            def connection_made(self, transport) -> None:
                super().connection_made(transport)
                if len(self.connections) > guard.max_connections:
                    guard.on_refused("connections")
                    guard.warnings.warning("connections", f"{len(self.connections) - 1} connections are open "
                                                          f"(EDGE_MAX_CONNECTIONS={guard.max_connections}): "
                                                          f"refusing new ones with 503")
                    message = _body("too_many_connections", "the edge has too many open connections; retry")
                    transport.write(BUSY_503 % (len(message), message))
                    transport.close()
                    return
                self._arm(guard.header_timeout_s, "headers")

            def connection_lost(self, exc) -> None:
                self._disarm()
                super().connection_lost(exc)

            def on_message_begin(self) -> None:
                super().on_message_begin()
                self._arm(guard.header_timeout_s, "headers")

            def on_headers_complete(self) -> None:
                self._arm(guard.body_timeout_s, "body")
                super().on_headers_complete()

            def on_message_complete(self) -> None:
                self._disarm()
                super().on_message_complete()

            def _arm(self, seconds: float, what: str) -> None:
                self._disarm()
                self._deadline = self.loop.call_later(seconds, self._too_slow, what)

            def _disarm(self) -> None:
                if self._deadline is not None:
                    self._deadline.cancel()
                    self._deadline = None

            def _too_slow(self, what: str) -> None:
                self._deadline = None
                if self.transport.is_closing():
                    return
                guard.on_refused(what)
                limit = "EDGE_HEADER_TIMEOUT_S" if what == "headers" else "EDGE_BODY_TIMEOUT_S"
                seconds = guard.header_timeout_s if what == "headers" else guard.body_timeout_s
                guard.warnings.warning(what, f"closed a connection from {self.client and self.client[0]} whose "
                                             f"request {what} took longer than {seconds:g} s ({limit})")
                if self.cycle is None or not self.cycle.response_started:
                    message = _body("request_timeout", f"the request {what} did not arrive within {seconds:g} s "
                                                       f"({limit})")
                    self.transport.write(TIMEOUT_408 % (len(message), message))
                self.transport.close()

        return GuardedProtocol


def connection_budget(wanted: int, listeners: int) -> tuple[int, int]:
    """Raise the soft file-descriptor limit to the hard one, and fit ``wanted`` connections per
    listener under it with room to spare (a warning says when it had to shrink). Returns the
    connections per listener and the listen backlog: asyncio accepts up to a backlog's worth of
    connections at once before any is refused, so that many descriptors are kept free too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    backlog = max(16, min(1024, soft // 8))
    fits = max((soft - FD_RESERVE - backlog * listeners) // max(listeners, 1), 16)
    if fits < wanted:
        log.warning("EDGE_MAX_CONNECTIONS=%d does not fit %d file descriptors (LimitNOFILE / ulimit -n): "
                    "%d connections per listener instead", wanted, soft, fits)
    return min(wanted, fits), backlog


class FoldRepeats(logging.Filter):
    """Lets a logger's warning or error through at most once per ``every_s`` per message text:
    a flood of bad requests ("Invalid HTTP request received.", "socket.accept() out of system
    resource") must not fill the disk with the same line and its traceback."""

    def __init__(self, every_s: float = 10.0) -> None:
        super().__init__()
        self.every_s = every_s
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, OSError) and error.errno == errno.EMFILE:
            # asyncio logs the socket and a traceback for every failed accept: one line says it all.
            record.msg, record.args, record.exc_info, record.exc_text = (
                "accepting a connection failed: too many open files (raise LimitNOFILE / ulimit -n, or lower "
                "EDGE_MAX_CONNECTIONS)", (), None, None)
        key = str(record.msg).split("\n", 1)[0][:200]
        now = time.monotonic()
        if now - self._last.get(key, -self.every_s) < self.every_s:
            return False
        if len(self._last) > 1000:
            self._last.clear()
        self._last[key] = now
        return True


def fold_repeated_warnings() -> None:
    for name in ("uvicorn.error", "asyncio"):
        logging.getLogger(name).addFilter(FoldRepeats())
