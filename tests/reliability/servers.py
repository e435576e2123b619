"""Small HTTP servers of the tests' own on 127.0.0.1: a listener that must get no request,
a redirector, and a misbehaving proxy in front of the real MLflow server.

The proxy forwards to the real server unless a rule answers instead: an error status (with
``Retry-After``), an HTML login page, a hang (accept, never answer), a drip (headers, then
one byte at a time), or a rewritten request. It records every request it saw, so tests can
count retries and check the page sizes the product asked for. Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import json
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    """One request the proxy received."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]

    @property
    def page_offset(self) -> int:
        """The offset in a search request's page token (0 for the first page)."""
        import base64

        token = (self.body or {}).get("page_token") if isinstance(self.body, dict) else None
        if not token:
            return 0
        return int(json.loads(base64.b64decode(token))["offset"])


@dataclass
class Reply:
    """An answer the proxy gives instead of forwarding."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html"})


HANG = Reply(status=-1)  # accept the request, never answer
DRIP = Reply(status=-2)  # send headers, then one byte every 0.5 s, never finish

Rule = Callable[[Seen], Reply | None]
After = Callable[[Seen, bytes], None]


class Proxy:
    """A proxy of the test's own; use as a context manager, read ``uri`` and ``requests``."""

    def __init__(
        self,
        target: str | None,
        rule: Rule | None = None,
        *,
        after: After | None = None,
        rewrite: Callable[[Seen, bytes | None], bytes | None] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.target = target
        self.rule = rule or (lambda seen: None)
        self.after = after
        self.rewrite = rewrite
        self.tls = tls
        self.requests: list[Seen] = []
        self.stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def uri(self) -> str:
        """Where the proxy listens."""
        assert self._server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def count(self, path_part: str) -> int:
        """Requests whose path contains ``path_part``."""
        return sum(path_part in seen.path for seen in self.requests)

    def __enter__(self) -> Proxy:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def forward(self, seen: Seen, raw: bytes | None) -> tuple[int, bytes, str]:
        """Send the request on to the real server; (status, body, content type)."""
        assert self.target is not None
        url = self.target + seen.path + (f"?{_query(seen.query)}" if seen.query else "")
        headers = {"Content-Type": seen.headers.get("Content-Type", "application/json")}
        request = urllib.request.Request(url, data=raw, headers=headers, method=seen.method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read(), response.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get_content_type()


def _query(query: dict[str, list[str]]) -> str:
    from urllib.parse import urlencode

    return urlencode([(k, v) for k, values in query.items() for v in values])


def _handler(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else None
            parts = urlsplit(self.path)
            seen = Seen(
                self.command, parts.path, parse_qs(parts.query), _json(raw), dict(self.headers)
            )
            proxy.requests.append(seen)
            reply = proxy.rule(seen)
            if reply is HANG:
                proxy.stopping.wait(120)
                return
            if reply is DRIP:
                self._drip()
                return
            if reply is not None:
                self._send(reply.status, reply.body, reply.headers)
                return
            if proxy.rewrite is not None:
                raw = proxy.rewrite(seen, raw)
            status, body, kind = proxy.forward(seen, raw)
            if proxy.after is not None:
                proxy.after(seen, body)
            self._send(status, body, {"Content-Type": kind})

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _drip(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            while not proxy.stopping.wait(0.5):
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def _json(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


class Listener:
    """A 127.0.0.1 server that records every request; optionally redirects (302) to ``to``."""

    def __init__(self, to: str | None = None) -> None:
        self.hits: list[str] = []
        self.to = to
        self._server: ThreadingHTTPServer | None = None

    @property
    def uri(self) -> str:
        """Where it listens."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Listener:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                listener.hits.append(self.path)
                if listener.to:
                    self.send_response(302)
                    self.send_header("Location", listener.to + self.path)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/css")
                self.end_headers()
                self.wfile.write(b"p { color: red }")

            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def listeners(count: int) -> Iterator[list[Listener]]:
    """``count`` recording listeners, the first redirecting to the second (and so on)."""
    opened: list[Listener] = []
    try:
        last = Listener().__enter__()
        opened.append(last)
        for _ in range(count - 1):
            last = Listener(to=last.uri).__enter__()
            opened.append(last)
        yield list(reversed(opened))
    finally:
        for item in opened:
            item.__exit__(None, None, None)
