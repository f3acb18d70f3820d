"""`siotap proxy --upstream https://...` (#12 Must 2): python-socketio under uvicorn serving TLS
with certificates made here (the `cryptography` package), the proxy trusting their CA through
--upstream-ca. Bad certificates (expired, for another name, from an unknown CA) give the client
a 502 and the capture a `proxy.upstream_tls` record saying which, and a `close`."""
import asyncio
import ssl
import subprocess

import aiohttp
import pytest
import requests
import socketio
from cryptography import x509

from conftest import SIOTAP, Proxy, python_server, wait_until
from pki import LOCAL, make_ca, make_leaf


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory, "test-ca")
    return directory, ca


@pytest.fixture(scope="module")
def tls_upstream(pki):
    directory, ca = pki
    server = python_server("conformance", stack="uvicorn", tls=make_leaf(directory, "good", ca, san=LOCAL))
    yield server
    server.stop()


TRANSPORTS = {"websocket": ["websocket"], "polling": ["polling"], "upgrade": ["polling", "websocket"]}


@pytest.mark.parametrize("transport,listener", [("websocket", "plain"), ("polling", "plain"), ("upgrade", "plain"),
                                                ("upgrade", "tls"), ("polling", "tls")])
def test_through_to_a_tls_upstream(tls_upstream, pki, transport, listener, tmp_path):
    """With `listener` tls, TLS on both hops: the client trusts siotap's CA (#12 Must 6, first set-up)."""
    assert tls_upstream.url.startswith("https://")
    tls_args = []
    if listener == "tls":
        subprocess.run([SIOTAP, "ca", "init", "--dir", str(tmp_path / "ca")], check=True, capture_output=True)
        tls_args = ["--tls", "auto", "--ca-dir", str(tmp_path / "ca")]
    proxy = Proxy(tls_upstream.url, tmp_path, "--upstream-ca", str(pki[1][2]), *tls_args)
    assert proxy.url.startswith("https://" if listener == "tls" else "http://")

    async def story():
        context = ssl.create_default_context(cafile=str(tmp_path / "ca" / "ca.pem")) if listener == "tls" else True
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
            client = socketio.AsyncClient(reconnection=False, http_session=http)
            seen = []
            client.on("message-back", lambda *args: seen.append(list(args)))
            await client.connect(proxy.url, transports=TRANSPORTS[transport], wait_timeout=5)
            assert client.transport() == TRANSPORTS[transport][-1]
            await client.emit("message", "to a tls upstream")
            ack = await client.call("message-with-ack", [1, 2], timeout=5)
            while not seen:
                await asyncio.sleep(0.02)
            await client.disconnect()
            return seen, ack

    try:
        seen, ack = asyncio.run(asyncio.wait_for(story(), 30))
        assert seen == [["to a tls upstream"]] and ack == [1, 2]
        # A client may drop its last requests on disconnect: the close then comes when the
        # session's heartbeat window (2 + 2 s here) has passed.
        closed = wait_until(lambda: any(r["kind"] == "close" for r in proxy.records()), timeout=10)
        records = proxy.records()
        tail = [(r["kind"], r.get("dir"), r.get("type"), r.get("code"), r.get("reason")) for r in records[-8:]]
        assert closed, f"no close; the capture ends: {tail}"
        assert ("s2c", "message-back") in [(r["dir"], r.get("event")) for r in records if r["kind"] == "packet"]
        assert not [r for r in records if r.get("code") in ("proxy.upstream_tls", "proxy.upstream_unreachable")]
        session = [r for r in records if r["kind"] == "session"][0]
        assert session["scheme"] == ("https" if listener == "tls" else "http")
        certificate = session["tls"]["upstream_cert"]
        assert (certificate["subject"], certificate["issuer"]) == ("CN=good", "CN=test-ca")
    finally:
        proxy.stop()
    if listener == "plain":
        # The capture replays against the TLS server itself, over the transports it was made on.
        import json
        replayed = subprocess.run([SIOTAP, "replay", str(proxy.capture), "--target", tls_upstream.url, "--upstream-ca", str(pki[1][2]), "--json"],
                                  capture_output=True, text=True, timeout=60)
        report = json.loads(replayed.stdout)
        assert replayed.returncode == 0 and report["equal"] is True, json.dumps(report, indent=1) + replayed.stderr
        assert sum(c["matched"] for c in report["connections"]) >= 3


@pytest.mark.parametrize("problem", ["expired", "wrong-name", "unknown-issuer"])
def test_a_bad_upstream_certificate_is_a_502_and_a_record(pki, problem, tmp_path):
    directory, ca = pki
    if problem == "expired":
        leaf, says = make_leaf(directory, "expired", ca, san=LOCAL, expired=True), "expired at"
    elif problem == "wrong-name":
        leaf, says = make_leaf(directory, "elsewhere", ca, san=x509.DNSName("elsewhere.example")), "not for 127.0.0.1"
    else:
        leaf, says = make_leaf(directory, "stranger", make_ca(directory, "stranger-ca"), san=LOCAL), "not signed by a trusted CA"
    server = python_server("conformance", stack="uvicorn", tls=leaf)
    proxy = Proxy(server.url, tmp_path, "--upstream-ca", str(ca[2]))
    try:
        response = requests.get(f"{proxy.url}/socket.io/?EIO=4&transport=polling", timeout=10)
        assert response.status_code == 502
        assert says in response.text, response.text
        assert wait_until(lambda: any(r.get("code") == "proxy.upstream_tls" for r in proxy.records()))
        failure = next(r for r in proxy.records() if r.get("code") == "proxy.upstream_tls")
        assert says in failure["message"], failure
        # The conn's close follows once its request is done.
        assert wait_until(lambda: any(r["kind"] == "close" and r["conn"] == failure["conn"] for r in proxy.records()))
        # A WebSocket's first request fails the same way, recorded without a conn.
        with pytest.raises(Exception):
            from websockets.sync.client import connect
            connect(proxy.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket", open_timeout=10)
        assert wait_until(lambda: sum(r.get("code") == "proxy.upstream_tls" for r in proxy.records()) == 2)
    finally:
        proxy.stop()
        server.stop()


def test_insecure_accepts_any_certificate_and_says_so(pki, tmp_path):
    directory, ca = pki
    server = python_server("conformance", stack="uvicorn", tls=make_leaf(directory, "expired2", ca, san=LOCAL, expired=True))
    proxy = Proxy(server.url, tmp_path, "--insecure")
    try:
        response = requests.get(f"{proxy.url}/socket.io/?EIO=4&transport=polling", timeout=10)
        assert response.status_code == 200 and response.text.startswith("0{")
        assert "NOT verified: --insecure" in proxy.start_line
    finally:
        proxy.stop()
        server.stop()


def test_ssl_key_log_has_the_upstream_sessions(tls_upstream, pki, tmp_path, monkeypatch):
    """SSLKEYLOGFILE with a plain listener and an https upstream: whatever is logged is the
    upstream side's (uvicorn cannot log its own side to compare with; the listener side is checked
    against curl in test_tls.py)."""
    log = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(log))
    proxy = Proxy(tls_upstream.url, tmp_path, "--upstream-ca", str(pki[1][2]))
    monkeypatch.delenv("SSLKEYLOGFILE")
    try:
        assert requests.get(f"{proxy.url}/socket.io/?EIO=4&transport=polling", timeout=10).status_code == 200
    finally:
        proxy.stop()
    lines = log.read_text().splitlines()
    assert any(line.startswith("CLIENT_TRAFFIC_SECRET_0 ") for line in lines), lines
    assert all(len(line.split(" ")) == 3 for line in lines)


def test_replay_against_a_tls_target(tls_upstream, pki, tmp_path):
    """`siotap replay --target https://…` (#27): python-socketio under uvicorn serving TLS, trusted
    through --upstream-ca, replays the conformance capture the same as over plain HTTP. A target
    whose certificate is not trusted cannot be reached: exit 3, nothing replayed."""
    import json

    from conftest import ROOT
    fixture = str(ROOT / "fixtures" / "conformance-binary.jsonl")
    trusted = subprocess.run([SIOTAP, "replay", fixture, "--target", tls_upstream.url, "--upstream-ca", str(pki[1][2]), "--json"],
                             capture_output=True, text=True, timeout=60)
    report = json.loads(trusted.stdout)
    assert trusted.returncode == 0 and report["equal"] is True, json.dumps(report, indent=1) + trusted.stderr
    assert sum(c["matched"] for c in report["connections"]) >= 4
    untrusted = subprocess.run([SIOTAP, "replay", fixture, "--target", tls_upstream.url, "--json"], capture_output=True, text=True, timeout=60)
    assert untrusted.returncode == 3 and "could not reach" in untrusted.stderr and untrusted.stdout == "", untrusted.stderr
