"""D1 and the secure-deployment defaults against a real ``streamlit run app/main.py``; D5's
viewer principal.

The server runs on 127.0.0.1 with the repository's ``.streamlit/config.toml`` and nothing
overridden but the port (no ``STREAMLIT_*`` variables, a HOME without a user config), on
the demo workspace. A real session is opened over the WebSocket the way the browser does
it, so the upload requests are well-formed (a live session ID, a multipart body with one
small file): the only difference between the refused and the accepted request is the
``X-Xsrftoken`` header that cross-origin script cannot produce.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.app.conftest import MAIN, REPO
from tests.app.servers import free_port, stop, wait_healthy

EVIL = "http://evil.example"
XSRF_COOKIE = "_streamlit_xsrf"
#: What RELIABILITY.md ("Secure-deployment defaults", D7) asks the server to run with.
PRODUCTION = {
    "server.headless": True,
    "server.address": "127.0.0.1",
    "server.enableXsrfProtection": True,
    "server.enableCORS": True,
    "server.fileWatcherType": "none",
    "server.enableStaticServing": False,
    "server.maxUploadSize": 1,
    "client.showErrorDetails": "none",
    "client.toolbarMode": "viewer",
    "browser.gatherUsageStats": False,
}
# How `streamlit run` resolves its config (streamlit.web.cli._main_run): the script path
# first (for a script-level config file), then the files and the command-line flags.
LOADER = """
import json, sys
from streamlit import config
from streamlit.web import bootstrap
config._main_script_path = sys.argv[1]
bootstrap.load_config_options(flag_options={"server_port": int(sys.argv[2])})
print(json.dumps({name: config.get_option(name) for name in json.loads(sys.argv[3])}))
"""


def _server_env(home: Path, **extra: str) -> dict[str, str]:
    """The test environment without Streamlit overrides, with an empty HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env.update(HOME=str(home), **extra)
    return env


@dataclass(frozen=True)
class Server:
    """A running server: its URL, port and environment."""

    url: str
    port: int
    env: dict[str, str]


def _start(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory) -> Iterator[Server]:
    """``streamlit run app/main.py`` with the production config, only the port changed."""
    port = free_port()
    work = tmp_path_factory.mktemp("secure-server")
    env = _server_env(work, MLFLOW_TRACKING_URI=demo.tracking_uri, RUNREVIEW_LOGDIR=demo.logdir)
    command = [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port)]
    proc = _start(command, REPO, env, work / "streamlit.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, work / "streamlit.log", time.monotonic() + 60)
        yield Server(url, port, env)
    finally:
        stop(proc)


def _request(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, bytes]:
    """(status, headers, body) of one request; error statuses are returned, not raised."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _new_xsrf_cookie(url: str) -> str:
    """A fresh ``_streamlit_xsrf`` cookie value, as the server hands one to a new visitor
    ("" when it hands none: XSRF protection is off, and the checks below fail)."""
    _, headers, _ = _request(f"{url}/_stcore/health")
    for cookie in headers.get_all("Set-Cookie") or []:
        name, _, rest = cookie.partition("=")
        if name == XSRF_COOKIE:
            return rest.split(";")[0]
    return ""


@dataclass(frozen=True)
class Session:
    """A live browser-like session: its XSRF cookie, ID and the config the server sent."""

    xsrf: str
    session_id: str
    config: Any  # streamlit.proto.NewSession_pb2.Config


@pytest.fixture
def session(server: Server) -> Iterator[Session]:
    """A session opened as Streamlit's frontend opens one: the XSRF cookie from the server,
    the WebSocket with the token as subprotocol, a first script run (NewSession)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    xsrf = _new_xsrf_cookie(server.url)
    with connect(
        f"ws://127.0.0.1:{server.port}/_stcore/stream",
        subprotocols=["streamlit", xsrf] if xsrf else ["streamlit"],
        origin=server.url,
        additional_headers={"Cookie": f"{XSRF_COOKIE}={xsrf}"},
        open_timeout=15,
    ) as socket:
        rerun = BackMsg()
        rerun.rerun_script.query_string = ""
        rerun.rerun_script.page_script_hash = ""
        socket.send(rerun.SerializeToString())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = ForwardMsg()
            message.ParseFromString(socket.recv(timeout=30))
            if message.WhichOneof("type") == "new_session":
                new = message.new_session
                yield Session(xsrf, new.initialize.session_id, new.config)
                return
        pytest.fail("the server sent no NewSession")


def _multipart(content: bytes, filename: str = "runs.json") -> tuple[bytes, str]:
    boundary = "runreview-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: application/json\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _upload(
    server: Server,
    session: Session,
    headers: dict[str, str],
    *,
    method: str = "PUT",
    content: bytes = b'{"runs": 1}',
) -> tuple[int, bytes]:
    """Send one file to Streamlit's upload route for ``session``."""
    body, content_type = _multipart(content)
    url = f"{server.url}/_stcore/upload_file/{session.session_id}/file-1"
    status, _, answer = _request(
        url, method, body, {"Content-Type": content_type, "Origin": EVIL, **headers}
    )
    return status, answer


# --- D1: XSRF on the upload route -------------------------------------------------------


def test_cross_origin_upload_without_a_valid_xsrf_token_is_refused(server, session):
    victim_cookie = {"Cookie": f"{XSRF_COOKIE}={session.xsrf}"}
    attackers_token = _new_xsrf_cookie(server.url)  # valid, but for another cookie
    refused = {
        "no cookie, no token": {},
        "the victim's cookie only (what a browser attaches)": victim_cookie,
        "the victim's cookie and another visitor's token": {
            **victim_cookie,
            "X-Xsrftoken": attackers_token,
        },
        "a token without its cookie": {"X-Xsrftoken": session.xsrf},
        "a malformed token": {**victim_cookie, "X-Xsrftoken": "2|00|forged|0"},
    }
    for case, headers in refused.items():
        assert _upload(server, session, headers) == (403, b"XSRF token missing or invalid"), case

    # An HTML form can only POST: Streamlit accepts uploads by PUT only.
    assert _upload(server, session, victim_cookie, method="POST")[0] == 405

    # The same request with the token Streamlit's own frontend sends is accepted: the 403s
    # above are the XSRF check, not a malformed request or an unknown session.
    valid = {**victim_cookie, "X-Xsrftoken": session.xsrf}
    assert _upload(server, session, valid) == (204, b"")
    assert _upload(server, session, valid, method="DELETE")[0] == 204


def test_an_upload_over_max_upload_size_is_refused(server, session):
    valid = {"Cookie": f"{XSRF_COOKIE}={session.xsrf}", "X-Xsrftoken": session.xsrf}
    status, _ = _upload(server, session, valid, content=b"x" * (1024 * 1024 + 1))
    assert status == 413


# --- the server runs with the production config -----------------------------------------


def test_the_production_config_is_what_streamlit_loads(server):
    """Streamlit's own loader, resolving exactly as ``streamlit run`` does for the server."""
    done = subprocess.run(
        [sys.executable, "-c", LOADER, str(MAIN), str(server.port), json.dumps(list(PRODUCTION))],
        cwd=REPO,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == PRODUCTION


def test_the_running_server_behaves_as_configured(server, session):
    from streamlit.proto.NewSession_pb2 import Config

    # browser.gatherUsageStats and client.toolbarMode as sent to the browser.
    assert session.config.gather_usage_stats is False
    assert session.config.toolbar_mode == Config.ToolbarMode.VIEWER
    # server.enableCORS: no cross-origin reader is allowed.
    _, headers, _ = _request(f"{server.url}/_stcore/health", headers={"Origin": EVIL})
    assert headers.get("Access-Control-Allow-Origin") is None
    # server.address: the port listens on 127.0.0.1 only (D7).
    assert _listening_addresses(server.port) == {"127.0.0.1"}
    # No uploads unless needed: the app has no upload widget (D2 applies only with one).
    sources = "\n".join(p.read_text() for p in (REPO / "app").rglob("*.py"))
    for widget in ("file_uploader", "camera_input", "audio_input"):
        assert widget not in sources


def _listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on ``port`` (Linux /proc/net)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(_ip(address))
    if not found:
        pytest.skip("no /proc/net listing for the server's port")
    return found


def _ip(hex_address: str) -> str:
    """An address of /proc/net/tcp{,6} in its usual notation."""
    import ipaddress

    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return str(ipaddress.IPv6Address(words))


# --- D5: the viewer principal for cache keys --------------------------------------------


@pytest.mark.parametrize(
    ("user", "header_values", "expected"),
    [
        ({"is_logged_in": True, "email": "a@x.org", "sub": "1"}, ["b@x.org"], "user:email:a@x.org"),
        ({"is_logged_in": True, "sub": "google-123"}, [], "user:sub:google-123"),
        ({"is_logged_in": True}, ["b@x.org"], "header:b@x.org"),
        ({"is_logged_in": False, "email": "a@x.org"}, [], "anonymous"),
        ({"email": "test@example.com"}, [" b@x.org "], "header:b@x.org"),  # no login
        ({}, ["b@x.org", "b@x.org"], "header:b@x.org"),
        ({}, ["b@x.org", "mallory@x.org"], "anonymous"),  # ambiguous: ignored
        ({}, ["user:email:a@x.org"], "header:user:email:a@x.org"),  # cannot pose as a login
        ({}, ["", "  "], "anonymous"),
        ({}, [], "anonymous"),
    ],
)
def test_principal_of(user, header_values, expected):
    from runreview.app.viewer import principal_of

    assert principal_of(user, header_values) == expected


def _principal_script() -> None:
    import streamlit as st

    from runreview.app.viewer import current_principal

    st.text(current_principal())


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ({"is_logged_in": True, "email": "alice@corp.example"}, "user:email:alice@corp.example"),
        ({"is_logged_in": False}, "anonymous"),
        ({"email": "test@example.com"}, "anonymous"),  # AppTest's default: not logged in
    ],
)
def test_current_principal_reads_st_user(user, expected, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("RUNREVIEW_PRINCIPAL_HEADER", "X-Forwarded-Email")  # no such header
    at = AppTest.from_function(_principal_script, default_timeout=30)
    at.user = user
    at.run()
    assert [t.value for t in at.text] == [expected]


def test_current_principal_reads_the_proxy_header_of_a_real_session(tmp_path):
    """The header as the proxy sends it on the WebSocket request, read by a real server."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    script = tmp_path / "principal.py"
    script.write_text(
        "import streamlit as st\nfrom app.viewer import current_principal\n"
        "st.text('principal=' + current_principal())\n"
    )
    port = free_port()
    env = _server_env(
        tmp_path, PYTHONPATH=str(REPO), RUNREVIEW_PRINCIPAL_HEADER="X-Forwarded-Email"
    )
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true"]  # fmt: skip
    proc = _start(command, tmp_path, env, tmp_path / "streamlit.log")
    url = f"http://127.0.0.1:{port}"
    shown: list[str] = []
    try:
        wait_healthy(url, proc, tmp_path / "streamlit.log", time.monotonic() + 60)
        for email in ("alice@corp.example", "bob@corp.example"):
            with connect(
                f"ws://127.0.0.1:{port}/_stcore/stream",
                subprotocols=["streamlit"],
                origin=url,
                additional_headers={"x-forwarded-email": email},
                open_timeout=15,
            ) as socket:
                rerun = BackMsg()
                rerun.rerun_script.query_string = ""
                socket.send(rerun.SerializeToString())
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    message = ForwardMsg()
                    message.ParseFromString(socket.recv(timeout=30))
                    text = message.delta.new_element.text.body
                    if text.startswith("principal="):
                        shown.append(text)
                        break
    finally:
        stop(proc)
    assert shown == ["principal=header:alice@corp.example", "principal=header:bob@corp.example"]


def test_two_viewers_do_not_share_cached_reads(open_app, demo, monkeypatch):
    """A viewer's first visit reads the store, their second is served from the cache, and
    another viewer's first visit reads the store again instead of using the first viewer's
    entry. Reads are counted on the real ``Workspace.runs`` (wrapped, not replaced)."""
    from streamlit.testing.v1 import AppTest

    from runreview.workspace import Workspace

    open_app
    monkeypatch.setenv("MLFLOW_TRACKING_URI", demo.tracking_uri)
    monkeypatch.setenv("RUNREVIEW_LOGDIR", demo.logdir)
    reads: list[int] = []
    real_runs = Workspace.runs

    def counted(self: Workspace, *args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        return real_runs(self, *args, **kwargs)

    monkeypatch.setattr(Workspace, "runs", counted)

    def visit(email: str) -> int:
        before = len(reads)
        at = AppTest.from_file(str(MAIN), default_timeout=90)
        at.user = {"is_logged_in": True, "email": email}
        at.run()
        assert not at.exception
        return len(reads) - before

    assert visit("alice@corp.example") >= 1
    assert visit("alice@corp.example") == 0  # the same viewer: cached
    assert visit("bob@corp.example") >= 1  # another viewer: not alice's entry
