"""The twin over real HTTP: stdlib ThreadingHTTPServer on a background thread.

HTTP/1.1 with keep-alive (clients pool connections, as against the real API). The server
writes the responses the twin builds and applies their wire-level faults: a stall past the
client's timeout, a TCP reset with no response, or a body shorter than its Content-Length.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from jobs_pipeline.twin.clock import SteppedClock
from jobs_pipeline.twin.control import handle_control
from jobs_pipeline.twin.responses import Response
from jobs_pipeline.twin.twin import CONTROL_PREFIX, Twin

# How often a moving clock's simulation is caught up between requests, so a request after a
# long idle period never pays for hours of simulated time at once.
TICK_SECONDS = 0.25


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], twin: Twin) -> None:
        self.twin = twin
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "devana-twin/1.0"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Small responses must not wait for delayed ACKs (Nagle would add ~40 ms per request).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):  # the client went away (e.g. timed out during a stall)
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is the twin's; stderr noise would drown test output

    def _drain_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)

    def _dispatch(self) -> None:
        self._drain_body()
        twin = self.server.twin
        if self.path.startswith(CONTROL_PREFIX):
            response = handle_control(twin, self.command, self.path)
        else:
            headers = {name: value for name, value in self.headers.items()}
            response = twin.handle(self.command, self.path, headers)
        try:
            self._write(response)
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def _write(self, response: Response) -> None:
        if response.delivery == "reset":
            # SO_LINGER 0 makes close() send a TCP RST: the client sees "connection reset".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if response.stall_seconds > 0 and self.server.stopping.wait(response.stall_seconds):
            self.close_connection = True
            return
        body = response.body
        headers = [*response.headers, ("Content-Length", str(len(body)))]
        if response.delivery == "truncated":
            # The headers promise the whole body; half of it comes, then the connection closes.
            headers.append(("Connection", "close"))
            body = body[: len(body) // 2]
            self.close_connection = True
        if self.command == "HEAD":
            body = b""
        head = f"HTTP/1.1 {response.status} {_reason(response.status)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers)
        # Headers and body in one send: one segment for small pages, no Nagle interplay.
        self.wfile.write(head.encode("latin-1") + b"\r\n" + body)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class TwinServer:
    def __init__(self, twin: Twin, host: str = "127.0.0.1", port: int = 0) -> None:
        self.twin = twin
        self._server = _Server((host, port), twin)
        self._threads: list[threading.Thread] = []

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        # A short poll interval: shutdown() waits for it, and tests start and stop many servers.
        serve = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="twin-http", daemon=True
        )
        self._threads.append(serve)
        if not isinstance(self.twin.clock, SteppedClock):
            self._threads.append(threading.Thread(target=self._tick, name="twin-ticker", daemon=True))
        for thread in self._threads:
            thread.start()

    def _tick(self) -> None:
        while not self._server.stopping.wait(TICK_SECONDS):
            self.twin.tick()

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        with self._server.connections_lock:
            open_connections = list(self._server.connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)  # unblock keep-alive reads
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def serve_forever(self) -> None:
        """Block until KeyboardInterrupt (the CLI's `twin serve`)."""
        self.start()
        try:
            while not self._server.stopping.wait(0.5):
                pass
        finally:
            self.stop()
