"""`siotap proxy --mode forward` (#12 Must 4): an HTTP proxy that intercepts CONNECT tunnels with
certificates its local CA mints for the names clients ask for. Peers: python-socketio's clients
(aiohttp and requests/websocket-client) finding the proxy in HTTPS_PROXY, python-socketio under
uvicorn serving TLS with certificates made here, the built-in server in plain HTTP, curl, and raw
sockets for what no well-behaved client sends."""
import os
import pathlib
import socket
import ssl
import subprocess
import signal

import pytest
import requests
import socketio
from cryptography import x509

from conftest import SIOTAP, Proxy, Server, python_server, tls_client_story, wait_until
from pki import LOCAL, LOCALHOST, make_ca, make_leaf

TRANSPORTS = {"websocket": ["websocket"], "polling": ["polling"], "upgrade": ["polling", "websocket"]}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    return directory, make_ca(directory, "test-ca")


@pytest.fixture(scope="module")
def tls_server(pki):
    directory, ca = pki
    cert, key = make_leaf(directory, "good", ca, san=[LOCALHOST, LOCAL])
    server = python_server("conformance", stack="uvicorn", tls=(cert, key))
    server.leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def plain_server():
    server = Server("--app", "conformance", "--ping-interval", "2000", "--ping-timeout", "2000")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def siotap_ca(tmp_path_factory):
    directory = tmp_path_factory.mktemp("siotap-ca")
    subprocess.run([SIOTAP, "ca", "init", "--dir", str(directory)], check=True, capture_output=True)
    return directory


@pytest.fixture
def forward(siotap_ca, pki, tmp_path):
    def start(*args):
        return Proxy(None, tmp_path, "--mode", "forward", "--ca-dir", str(siotap_ca), "--upstream-ca", str(pki[1][2]), *args)

    started = []
    yield lambda *args: started.append(start(*args)) or started[-1]
    for proxy in started:
        proxy.stop()


@pytest.fixture
def proxy_env(monkeypatch):
    """Points clients at a proxy the way users do: the environment."""
    def point(proxy):
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "WSS_PROXY", "WS_PROXY", "https_proxy", "http_proxy"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
    return point


def async_story(url, transports, cafile):
    """python-socketio's asyncio client (aiohttp, proxies from the environment)."""
    return tls_client_story(url, transports, cafile, ("through a forward proxy", 1.50), trust_env=True)


def sync_story(url, transports, cafile):
    """python-socketio's threaded client: requests for polling, websocket-client for WebSocket.
    Its polling requests ask requests to verify with its default bundle, which then comes from
    REQUESTS_CA_BUNDLE (set by the test); websocket-client takes the session's `verify`."""
    http = requests.Session()
    http.verify = str(cafile)
    http.proxies = {"https": os.environ["HTTPS_PROXY"], "http": os.environ["HTTP_PROXY"]}
    client = socketio.Client(reconnection=False, http_session=http)
    seen = []
    client.on("message-back", lambda *args: seen.append(list(args)))
    client.connect(url, transports=transports, wait_timeout=5)
    try:
        assert client.transport() == transports[-1]
        client.emit("message", ("through a forward proxy", 1.50))
        ack = client.call("message-with-ack", b"\x00\xff", timeout=5)
        wait_until(lambda: seen, timeout=5)
    finally:
        client.disconnect()
    return seen, ack


def read_response(tls):
    """A whole HTTP response (Content-Length or chunked), however the server split it."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += tls.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    while (len(body) < lengths[0]) if lengths else not body.endswith(b"0\r\n\r\n"):  # else chunked
        body += tls.recv(4096)
    return head, body


def session_of(proxy, target):
    sessions = [r for r in proxy.records() if r["kind"] == "session" and r.get("target") == target]
    assert sessions, f"no session for {target}: {[r['kind'] for r in proxy.records()]}"
    return sessions


def until_closed(proxy):
    # A client may drop its last polling requests on disconnect: the close then comes once the
    # session's heartbeat window has passed.
    assert wait_until(lambda: any(r["kind"] == "close" for r in proxy.records()), timeout=10), "no close record"


@pytest.mark.parametrize("client,transport", [("async", "websocket"), ("async", "polling"), ("async", "upgrade"),
                                              ("sync", "upgrade")])
def test_a_tls_server_through_the_forward_proxy(forward, proxy_env, tls_server, siotap_ca, client, transport, monkeypatch):
    proxy = forward()
    proxy_env(proxy)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(siotap_ca / "ca.pem"))
    url = f"https://localhost:{tls_server.port}"
    story = async_story if client == "async" else sync_story
    seen, ack = story(url, TRANSPORTS[transport], siotap_ca / "ca.pem")
    assert seen == [["through a forward proxy", 1.50]]
    assert ack == b"\x00\xff"
    until_closed(proxy)
    records = proxy.records()
    target = f"localhost:{tls_server.port}"
    session = session_of(proxy, target)[0]
    assert session["scheme"] == "https"
    assert session["upstream"] == f"https://{target}"
    assert session["tls"]["sni"] == "localhost"
    assert session["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
    certificate = session["tls"]["upstream_cert"]
    assert certificate["subject"] == "CN=good" and certificate["issuer"] == "CN=test-ca"
    expiry = tls_server.leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert certificate["not_after"] == expiry
    packets = [(r["dir"], r.get("event"), r.get("args")) for r in records if r["kind"] == "packet"]
    assert ("c2s", "message", ["through a forward proxy", 1.50]) in packets
    assert ("s2c", "message-back", ["through a forward proxy", 1.50]) in packets
    # The float is in the capture as it was on the wire.
    assert '"through a forward proxy",1.5' in proxy.capture.read_text()
    if transport == "upgrade":
        assert {r["transport"] for r in records if r["kind"] == "engine"} == {"polling", "websocket"}
    # python-engineio answers a long-poll left pending by the client's close with a 400, and the
    # capture says so (proxy.upstream_status); nothing else may go wrong.
    errors = [r for r in records if r["kind"] == "error" and r["code"] != "proxy.upstream_status"]
    assert not errors, errors


def test_tls_details_are_what_the_client_agreed(forward, tls_server, siotap_ca):
    """A raw client through CONNECT: the version and cipher in the session record are those its
    own TLS stack reports."""
    proxy = forward()
    target = f"localhost:{tls_server.port}"
    with socket.create_connection((proxy.host, int(proxy.port)), timeout=10) as raw:
        raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        assert raw.recv(1024).startswith(b"HTTP/1.1 200")
        context = ssl.create_default_context(cafile=str(siotap_ca / "ca.pem"))
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(f"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            head, body = read_response(tls)
            assert b" 200 " in head.split(b"\r\n")[0] and b'"sid"' in body
            version, cipher = tls.version(), tls.cipher()[0]
            issuer = tls.getpeercert()["issuer"]
    assert wait_until(lambda: [r for r in proxy.records() if r["kind"] == "engine"])
    session = session_of(proxy, target)[0]
    assert (session["tls"]["version"], session["tls"]["cipher"]) == (version, cipher)
    # The leaf the client saw was minted by siotap's CA.
    assert any(("commonName", value) in rdn for rdn in issuer for value in [rdn[0][1]] if value.startswith("siotap local CA"))


def test_a_plain_http_server_through_the_same_proxy(forward, proxy_env, plain_server, tls_server, siotap_ca):
    proxy = forward()
    proxy_env(proxy)
    seen, _ = async_story(plain_server.url, TRANSPORTS["upgrade"], siotap_ca / "ca.pem")
    seen_tls, _ = async_story(f"https://localhost:{tls_server.port}", TRANSPORTS["websocket"], siotap_ca / "ca.pem")
    assert seen == seen_tls == [["through a forward proxy", 1.50]]
    plain = session_of(proxy, f"127.0.0.1:{plain_server.port}")[0]
    assert plain["scheme"] == "http" and "tls" not in plain
    assert plain["upstream"] == f"http://127.0.0.1:{plain_server.port}"
    session_of(proxy, f"localhost:{tls_server.port}")
    records = proxy.records()
    assert {r["transport"] for r in records if r["kind"] == "engine" and r["conn"] == plain["conn"]} == {"polling", "websocket"}


def test_an_ignored_host_is_tunnelled_untouched(forward, tls_server, pki):
    """Ignored hosts keep their own certificate: the client trusts only the server's CA, and sees
    the server's leaf. Nothing of it is recorded."""
    proxy = forward("--ignore-hosts", rf"^127\.0\.0\.1:{tls_server.port}$")
    target = f"127.0.0.1:{tls_server.port}"
    with socket.create_connection((proxy.host, int(proxy.port)), timeout=10) as raw:
        raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        assert raw.recv(1024).startswith(b"HTTP/1.1 200")
        context = ssl.create_default_context(cafile=str(pki[1][2]))
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            seen = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
            tls.sendall(f"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            assert b'"sid"' in read_response(tls)[1]
    assert seen == tls_server.leaf
    # The same server by another name is intercepted.
    with socket.create_connection((proxy.host, int(proxy.port)), timeout=10) as raw:
        raw.sendall(f"CONNECT localhost:{tls_server.port} HTTP/1.1\r\n\r\n".encode())
        assert raw.recv(1024).startswith(b"HTTP/1.1 200")
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context(cafile=str(pki[1][2])).wrap_socket(raw, server_hostname="localhost")
    assert wait_until(lambda: [r for r in proxy.records() if r.get("code") == "proxy.tls_handshake"])
    assert not [r for r in proxy.records() if r["kind"] == "session"]


def test_allow_hosts_intercepts_only_those(forward, tls_server, pki):
    proxy = forward("--allow-hosts", "^nothing-here$")
    target = f"localhost:{tls_server.port}"
    with socket.create_connection((proxy.host, int(proxy.port)), timeout=10) as raw:
        raw.sendall(f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
        assert raw.recv(1024).startswith(b"HTTP/1.1 200")
        with ssl.create_default_context(cafile=str(pki[1][2])).wrap_socket(raw, server_hostname="localhost") as tls:
            assert x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)) == tls_server.leaf


def test_curl_through_the_proxy(forward, tls_server, siotap_ca, pki):
    """Plain HTTPS that is not Engine.IO passes through as the server answered it."""
    proxy = forward()
    url = f"https://localhost:{tls_server.port}/not-socket-io?x=1"
    direct = subprocess.run(["curl", "-s", "-i", "--cacert", str(pki[1][2]), url], capture_output=True, timeout=30)
    through = subprocess.run(["curl", "-s", "-i", "--proxy", proxy.url, "--cacert", str(siotap_ca / "ca.pem"), url],
                             capture_output=True, timeout=30)
    assert through.returncode == 0, through.stderr

    def status_and_body(raw):
        head, _, body = raw.partition(b"\r\n\r\n")
        return head.split(b"\r\n")[0], body

    # curl prints the proxy's 200 for the CONNECT first.
    relayed = through.stdout.split(b"\r\n\r\n", 1)[1] if through.stdout.startswith(b"HTTP/1.1 200 Connection") else through.stdout
    assert status_and_body(relayed) == status_and_body(direct.stdout)
    # A polling handshake through curl is decoded.
    handshake = subprocess.run(["curl", "-s", "--proxy", proxy.url, "--cacert", str(siotap_ca / "ca.pem"),
                                f"https://localhost:{tls_server.port}/socket.io/?EIO=4&transport=polling"],
                               capture_output=True, timeout=30)
    assert handshake.stdout.startswith(b"0{")
    assert wait_until(lambda: [r for r in proxy.records() if r["kind"] == "engine" and r["type"] == "open"])


def test_a_client_that_does_not_trust_the_ca(forward, tls_server):
    proxy = forward()
    result = subprocess.run(["curl", "-s", "--proxy", proxy.url, f"https://localhost:{tls_server.port}/"],
                            capture_output=True, timeout=30)
    assert result.returncode == 60  # peer certificate cannot be authenticated with known CA certificates
    assert wait_until(lambda: [r for r in proxy.records() if r.get("code") == "proxy.tls_handshake"])
    record = [r for r in proxy.records() if r.get("code") == "proxy.tls_handshake"][0]
    assert f"CONNECT localhost:{tls_server.port}" in record["message"] and "trust" in record["message"]


def test_an_upstream_with_an_expired_certificate(forward, proxy_env, pki, siotap_ca):
    directory, ca = pki
    server = python_server("conformance", stack="uvicorn", tls=make_leaf(directory, "expired", ca, san=[LOCALHOST], expired=True))
    try:
        proxy = forward()
        response = requests.get(f"https://localhost:{server.port}/socket.io/?EIO=4&transport=polling",
                                proxies={"https": proxy.url}, verify=str(siotap_ca / "ca.pem"), timeout=10)
        assert response.status_code == 502 and "expired" in response.text
        assert wait_until(lambda: [r for r in proxy.records() if r.get("code") == "proxy.upstream_tls"])
        assert wait_until(lambda: [r for r in proxy.records() if r["kind"] == "close"])
    finally:
        server.stop()


def test_a_connect_to_a_closed_port_is_a_502(forward):
    proxy = forward()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with socket.create_connection((proxy.host, int(proxy.port)), timeout=10) as raw:
        raw.sendall(f"CONNECT 127.0.0.1:{closed} HTTP/1.1\r\n\r\n".encode())
        assert raw.recv(1024).startswith(b"HTTP/1.1 502")
    # The capture is written after the answer goes: wait for the line.
    assert wait_until(lambda: [r for r in proxy.records() if r.get("code") == "proxy.bad_tunnel"])
    records = [r for r in proxy.records() if r.get("code") == "proxy.bad_tunnel"]
    assert f"127.0.0.1:{closed}" in records[0]["message"]
    # No Socket.IO traffic went through it: kept, as info, not an error.
    assert records[0]["kind"] == "info"


@pytest.mark.parametrize("garbage,code", [(b"\x00\x01\x02garbage\r\n\r\n", "proxy.bad_tunnel"),
                                          (b"\x16\x03\x01\x00\x05hello", "proxy.tls_handshake")])
def test_garbage_after_connect(forward, tls_server, garbage, code):
    proxy = forward()
    with socket.create_connection((proxy.host, int(proxy.port)), timeout=10) as raw:
        raw.sendall(f"CONNECT localhost:{tls_server.port} HTTP/1.1\r\n\r\n".encode())
        assert raw.recv(1024).startswith(b"HTTP/1.1 200")
        raw.sendall(garbage)
        raw.settimeout(10)
        try:
            while raw.recv(4096):
                pass
        except ConnectionResetError:
            pass
    assert wait_until(lambda: [r for r in proxy.records() if r.get("code") == code]), proxy.records()
    assert {r["kind"] for r in proxy.records() if r.get("code") == code} == {"info"}
    # The proxy still serves.
    assert requests.get(f"{proxy.url}/", timeout=10).status_code == 400


def test_bad_connect_targets(forward):
    proxy = forward()
    for target in ["no-port", "host:99999", "a b:80"]:
        with socket.create_connection((proxy.host, int(proxy.port)), timeout=10) as raw:
            raw.sendall(f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
            assert raw.recv(1024).split(b"\r\n")[0] in (b"HTTP/1.1 400 Bad Request",), target


@pytest.fixture
def chromium_trusting(siotap_ca, tmp_path):
    """A HOME whose NSS database (where Chromium on Linux looks) trusts siotap's CA, and only that."""
    home = tmp_path / "home"
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "siotap local CA", "-i",
                    str(siotap_ca / "ca.pem")], check=True, capture_output=True)
    return {**os.environ, "HOME": str(home)}


@pytest.mark.parametrize("transports", ["websocket", "polling,websocket"], ids=["websocket", "upgrade"])
def test_chromium_through_the_forward_proxy(forward, tls_server, pki, chromium_trusting, transports):
    from test_browser import PageServer, open_in_chromium

    proxy = forward()
    directory, ca = pki
    # The page's server has a leaf of the test CA: the browser reaches it through the proxy, which checks it.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*make_leaf(directory, "pages", ca, san=[LOCALHOST]))
    pages = PageServer(pathlib.Path(__file__).parent / "browser" / "forward.html", tls=context)
    url = f"https://localhost:{pages.port}/forward.html?transports={transports}&server=https://localhost:{tls_server.port}"
    try:
        # Chromium sends loopback hosts past any proxy unless told not to.
        results = open_in_chromium(url, pages, extra_args=[f"--proxy-server={proxy.url}", "--proxy-bypass-list=<-loopback>"],
                                   env=chromium_trusting)
    finally:
        pages.stop()
    records = proxy.records()
    assert results["errors"] == [], records
    last = transports.split(",")[-1]
    assert dict((step, value) for step, value in results["seen"]) == {
        "transport": last, "echo": ["from chromium", 2.5], "ack": "acked"}
    # The page itself came through the proxy too, over TLS it intercepted.
    session = session_of(proxy, f"localhost:{tls_server.port}")[0]
    assert session["scheme"] == "https" and session["tls"]["sni"] == "localhost"
    assert session["headers"]["Origin"] == f"https://localhost:{pages.port}"
    events = [(r["dir"], r.get("event"), r.get("args")) for r in records if r["kind"] == "packet"]
    assert ("c2s", "message", ["from chromium", 2.5]) in events
    assert ("s2c", "message-back", ["from chromium", 2.5]) in events
    assert {r["transport"] for r in records if r["kind"] == "engine"} >= {last}


def test_the_real_host_is_asked_by_name_for_http_1_1(forward, pki, siotap_ca):
    """siotap's own TLS connection to the real host sends SNI and ALPN `http/1.1` (a TLS server
    made here, Python's ssl, notes what it was asked)."""
    import threading

    directory, ca = pki
    asked = {}
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*make_leaf(directory, "sni", ca, san=[LOCALHOST]))
    context.set_alpn_protocols(["h2", "http/1.1"])

    def note_sni(connection, name, _):
        asked["sni"] = name  # returning anything but None would be an alert

    context.sni_callback = note_sni
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_one():
        while True:  # the proxy first checks the port with a bare TCP connection
            connection, _ = listener.accept()
            try:
                tls = context.wrap_socket(connection, server_side=True)
            except (ssl.SSLError, OSError):
                continue
            with tls:
                asked["alpn"] = tls.selected_alpn_protocol()
                data = b""
                while b"\r\n\r\n" not in data:
                    data += tls.recv(4096)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            return

    server = threading.Thread(target=serve_one, daemon=True)
    server.start()
    proxy = forward()
    try:
        result = subprocess.run(["curl", "-s", "--proxy", proxy.url, "--cacert", str(siotap_ca / "ca.pem"),
                                 f"https://localhost:{port}/"], capture_output=True, timeout=30)
        assert result.stdout == b"ok", result
        server.join(10)
        assert asked == {"sni": "localhost", "alpn": "http/1.1"}
    finally:
        listener.close()


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_faults_in_forward_mode(forward, proxy_env, plain_server, transport):
    """--fault in forward mode: a dropped ack times out over either transport, the rest goes on."""
    import asyncio

    import aiohttp
    proxy = forward("--fault", "drop,type=ACK,dir=s2c")
    proxy_env(proxy)

    async def story():
        async with aiohttp.ClientSession(trust_env=True) as http:
            client = socketio.AsyncClient(reconnection=False, http_session=http)
            echoed = asyncio.Event()
            client.on("message-back", lambda *args: echoed.set())
            await client.connect(plain_server.url, transports=[transport], wait_timeout=5)
            with pytest.raises(socketio.exceptions.TimeoutError):
                await client.call("message-with-ack", "lost", timeout=1)
            await client.emit("message", "still here")
            await asyncio.wait_for(echoed.wait(), 5)
            await client.disconnect()

    asyncio.run(asyncio.wait_for(story(), 30))
    assert wait_until(lambda: any(r["kind"] == "close" for r in proxy.records()), timeout=10)
    records = proxy.records()
    [ack] = [r for r in records if r["kind"] == "packet" and r["type"] == "ACK"]
    [fault] = [r for r in records if r["kind"] == "fault"]
    assert fault["action"] == "drop" and fault["packet"] == ack["seq"] and ack["transport"] == transport


def test_a_cut_in_forward_mode_tells_the_conns_own_server(forward, proxy_env, plain_server, tmp_path):
    """A fault's cut of a polling conn posts a close packet to the server the session is on, so the
    server ends it at once: in forward mode that is the conn's own upstream (the host of its
    absolute URIs), not the reverse-mode upstream, which forward mode does not have. A recording
    reverse proxy in front of the server shows what the server got."""
    import asyncio

    import aiohttp
    (tmp_path / "server-side").mkdir()
    recorder = Proxy(plain_server.url, tmp_path / "server-side")
    proxy = forward("--fault", "disconnect,event=bye")
    proxy_env(proxy)

    async def story():
        async with aiohttp.ClientSession(trust_env=True) as http:
            client = socketio.AsyncClient(reconnection=False, http_session=http)
            gone = asyncio.Event()
            client.on("disconnect", lambda *args: gone.set())
            await client.connect(recorder.url, transports=["polling"], wait_timeout=5)
            await client.emit("bye")
            await asyncio.wait_for(gone.wait(), 10)

    try:
        asyncio.run(asyncio.wait_for(story(), 30))
        # Well within the server's heartbeat window (2 s + 2 s), which would end it otherwise.
        assert wait_until(lambda: any(r["kind"] == "engine" and r["type"] == "close" and r["dir"] == "c2s"
                                      for r in recorder.records()), timeout=3), recorder.records()
        [cut] = [r for r in proxy.records() if r["kind"] == "fault"]
        assert cut["action"] == "disconnect"
    finally:
        recorder.stop()


@pytest.mark.parametrize("shown", [False, True])
def test_failed_tunnels_stay_out_of_the_live_view(siotap_ca, pki, tmp_path, shown):
    """A browser's background services fail tunnels all day (#27 Must 6): kept in the capture as
    info, left out of the live view and counted when the proxy stops, unless --show-tunnels."""
    capture = tmp_path / "capture.jsonl"
    process = subprocess.Popen([SIOTAP, "proxy", "--mode", "forward", "--listen", "127.0.0.1:0", "--ca-dir", str(siotap_ca),
                                "--record", str(capture), "--format", "text", *(["--show-tunnels"] if shown else [])],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stderr.readline()
    while "forward proxy on" not in line:
        assert line, "the proxy did not start"
        line = process.stderr.readline()
    port = int(line.split("forward proxy on http://127.0.0.1:")[1].split()[0])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(f"CONNECT 127.0.0.1:{closed} HTTP/1.1\r\n\r\n".encode())
            assert raw.recv(1024).startswith(b"HTTP/1.1 502")
    assert wait_until(lambda: capture.exists() and capture.read_text().count('"kind":"info"') == 2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 0
    assert ("info proxy.bad_tunnel" in out) == shown, out
    assert ("2 tunnels failed before any Socket.IO traffic" in err) == (not shown), err
