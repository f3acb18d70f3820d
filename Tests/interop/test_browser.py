"""The official JavaScript client, in a real headless Chromium (Debian's), through `siotap proxy`: a
page (Tests/interop/browser/chat.html) on another origin than the proxy plays the chat contract (a
JWT in `auth`, a forged one refused, a room) and the conformance one (binary in an ack, /custom),
over websocket, polling and the upgrade, with a header that makes every polling request go through
a CORS preflight. The proxy's capture must show what the page saw, and no conn for a preflight."""
import json
import shutil
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

from conftest import ROOT, SECRET, Proxy, Server
from test_chat_interop import token

BUNDLE = ROOT / ".peers" / "js" / "socket.io-4.8.1.min.js"
PAGE = ROOT / "Tests" / "interop" / "browser" / "chat.html"
CHROMIUM = shutil.which("chromium") or "chromium"  # installed by scripts/setup-peers.sh


class PageServer:
    """Serves a page and the client bundle, and takes the page's results (POST /result); over
    https with `tls` (an ssl.SSLContext)."""

    def __init__(self, page=PAGE, tls=None):
        self.results = None
        self.done = threading.Event()
        owner = self
        files = {"/" + page.name: (page, "text/html"), "/socket.io.js": (BUNDLE, "text/javascript")}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                if path not in files:
                    self.send_error(404)
                    return
                body = files[path][0].read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", files[path][1])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                owner.results = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(204)
                self.end_headers()
                owner.done.set()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def open_in_chromium(url, pages, timeout=40, extra_args=(), env=None):
    """Loads `url` in a fresh headless Chromium and waits for the page to post its results."""
    profile = tempfile.mkdtemp(prefix="siotap-chromium-")
    browser = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", *extra_args, url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        assert pages.done.wait(timeout), "the page never posted its results"
        return pages.results
    finally:
        browser.kill()
        browser.wait(10)
        shutil.rmtree(profile, ignore_errors=True)


def proxies(chat, conformance, directory):
    """A proxy in front of each server, each recording to its own folder."""
    for name in ("chat", "conformance"):
        (directory / name).mkdir()
    return Proxy(chat.url, directory / "chat", "--jwt-secret", SECRET), Proxy(conformance.url, directory / "conformance")


def captures(*proxies):
    """The captures, for a failure's message."""
    return "\n\n".join("\n".join(json.dumps(r)[:300] for r in proxy.records()) for proxy in proxies)


@pytest.fixture(scope="module")
def cors_servers():
    chat = Server("--app", "chat", "--jwt-secret", SECRET, "--cors", "*")
    conformance = Server("--app", "conformance", "--cors", "*")
    yield chat, conformance
    chat.stop()
    conformance.stop()


@pytest.mark.diagnosed  # refuses a token on purpose
@pytest.mark.parametrize("transports", ["websocket", "polling", "polling,websocket"], ids=["websocket", "polling", "upgrade"])
def test_the_official_client_in_chromium_through_the_proxy(cors_servers, transports, tmp_path):
    chat, conformance = cors_servers
    chat_proxy, conformance_proxy = proxies(chat, conformance, tmp_path)
    pages = PageServer()
    forged = jwt.encode({"id": 666, "exp": 4102444800}, "not-the-secret-at-all-not-the-secret", algorithm="HS256")
    query = (f"transports={transports}&chat={chat_proxy.url}&conformance={conformance_proxy.url}"
             f"&token={token(1, name='alice', rooms=['vip'])}&forged={forged}")
    try:
        results = open_in_chromium(f"{pages.url}/chat.html?{query}", pages)
    finally:
        pages.stop()
        chat_proxy.stop()
        conformance_proxy.stop()
    assert results["errors"] == [], f"{results['log']}\n" + captures(chat_proxy, conformance_proxy)
    seen = dict((step, value) for step, value in results["seen"])
    last = transports.split(",")[-1]
    assert seen == {
        "refused": "Authentication error: Invalid token",
        "chat transport": last,
        "chat response": "You sent: hi from the browser",
        "roomJoined": "vip",
        "auth": {"token": "abc"},
        "conformance transport": last,
        "binary ack": [[1, 2, 3], "text"],
        "custom auth": {"token": "abc"},
        "custom echo": ["on custom", 1.5],
    }

    # The chat capture: two sessions (no conn for the preflights), the tokens judged, what the
    # page saw decoded.
    records = chat_proxy.records()
    sessions = [r for r in records if r["kind"] == "session"]
    assert len(sessions) == 2 and all(r["path"] == "/socket.io/" for r in sessions)
    assert all(r["headers"].get("Origin") == pages.url for r in sessions)
    verdicts = sorted((r["claims"]["id"], r["verified"]) for r in records if r["kind"] == "jwt")
    assert verdicts == [(1, True), (666, False)]
    refusal = [r for r in records if r["kind"] == "packet" and r["type"] == "CONNECT_ERROR"]
    assert [r["data"] for r in refusal] == [{"message": "Authentication error: Invalid token"}]
    events = [(r["dir"], r["event"], r["args"]) for r in records if r["kind"] == "packet" and r.get("event")]
    assert ("c2s", "message", [{"message": "hi from the browser", "sender": "alice"}]) in events
    assert ("s2c", "chat response", ["You sent: hi from the browser"]) in events
    assert ("s2c", "roomJoined", ["vip"]) in events
    assert [r["kind"] for r in records].count("close") == 2, captures(chat_proxy)

    # The conformance capture: one session, the binary ack whole, /custom's echo.
    records = conformance_proxy.records()
    assert len([r for r in records if r["kind"] == "session"]) == 1
    binary = [r for r in records if r["kind"] == "packet" and r["type"] in ("BINARY_EVENT", "BINARY_ACK")]
    assert [(r["dir"], r["args"]) for r in binary] == [("c2s", [{"$binary": "AQID"}, "text"]),
                                                      ("s2c", [{"$binary": "AQID"}, "text"])]
    assert binary[1]["latency_ms"] >= 0
    custom = [(r["dir"], r["type"], r.get("args")) for r in records if r["kind"] == "packet" and r["nsp"] == "/custom"]
    assert ("s2c", "EVENT", ["on custom", 1.5]) in custom and ("c2s", "CONNECT", None) in custom
    used = {r["transport"] for r in records if r["kind"] in ("packet", "engine")}
    assert used == set(transports.split(","))
    assert not [r for r in records if r["kind"] == "error"]


# socket.io-client 2.3.0 (Engine.IO 3, protocol v4): Tests/interop/browser/client2.js runs the browser
# bundle in node, against the built-in server directly and through the proxy.
CLIENT2 = ROOT / "Tests" / "interop" / "browser" / "client2.js"
BUNDLE2 = ROOT / ".peers" / "js" / "socket.io-2.3.0.js"
TRANSPORTS2 = {"websocket": ["websocket"], "polling": ["polling"], "upgrade": ["polling", "websocket"]}
EXPECTED2 = {
    "refused": "Authentication error: Invalid token",
    "chat response": "You sent: hi from socket.io-client 2",
    "binary ack": [[1, 2, 3], "text"],
    "custom echo": ["on custom", 1.5],
}


def run_client2(chat_url, conformance_url, transports, captures=()):
    forged = jwt.encode({"id": 666, "exp": 4102444800}, "not-the-secret-at-all-not-the-secret", algorithm="HS256")
    config = {"chat": chat_url, "conformance": conformance_url, "transports": transports,
              "token": token(2, name="bob"), "forged": forged}
    result = subprocess.run(["node", str(CLIENT2), str(BUNDLE2), json.dumps(config)], capture_output=True, text=True,
                            timeout=40)
    assert result.returncode == 0, result.stderr[-2000:]
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["errors"] == [], globals()["captures"](*captures)
    return dict((step, value) for step, value in outcome["seen"])


@pytest.fixture(scope="module")
def servers():
    chat = Server("--app", "chat", "--jwt-secret", SECRET)
    conformance = Server("--app", "conformance")
    yield chat, conformance
    chat.stop()
    conformance.stop()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_socket_io_client_2_against_the_built_in_server(servers, transport):
    chat, conformance = servers
    seen = run_client2(chat.url, conformance.url, TRANSPORTS2[transport])
    assert seen == {**EXPECTED2, "chat transport": transport, "conformance transport": transport}


@pytest.mark.diagnosed  # refuses a token on purpose
@pytest.mark.parametrize("transport", TRANSPORTS2)
def test_socket_io_client_2_through_the_proxy(servers, transport, tmp_path):
    chat, conformance = servers
    chat_proxy, conformance_proxy = proxies(chat, conformance, tmp_path)
    try:
        seen = run_client2(chat_proxy.url, conformance_proxy.url, TRANSPORTS2[transport], captures=(chat_proxy, conformance_proxy))
    finally:
        chat_proxy.stop()
        conformance_proxy.stop()
    last = TRANSPORTS2[transport][-1]
    assert seen == {**EXPECTED2, "chat transport": last, "conformance transport": last}

    records = chat_proxy.records()
    sessions = [r for r in records if r["kind"] == "session"]
    assert len(sessions) == 2 and all(r["eio"] == 3 for r in sessions)
    verdicts = sorted((r["source"], r["claims"]["id"], r["verified"]) for r in records if r["kind"] == "jwt")
    assert verdicts == [("query.token", 2, True), ("query.token", 666, False)]
    refusals = [r["data"] for r in records if r["kind"] == "packet" and r["type"] == "CONNECT_ERROR"]
    assert refusals == ["Authentication error: Invalid token"]
    events = [(r["dir"], r["event"], r["args"]) for r in records if r["kind"] == "packet" and r.get("event")]
    assert ("s2c", "chat response", ["You sent: hi from socket.io-client 2"]) in events

    records = conformance_proxy.records()
    binary = [(r["dir"], r["type"], r["args"]) for r in records if r["kind"] == "packet" and r["type"].startswith("BINARY")]
    assert binary == [("c2s", "BINARY_EVENT", [{"$binary": "AQID"}, "text"]),
                      ("s2c", "BINARY_ACK", [{"$binary": "AQID"}, "text"])]
    assert ("s2c", "EVENT", ["on custom", 1.5]) in [
        (r["dir"], r["type"], r.get("args")) for r in records if r["kind"] == "packet" and r["nsp"] == "/custom"]
    assert {r["transport"] for r in records if r["kind"] in ("packet", "engine")} == set(TRANSPORTS2[transport])
