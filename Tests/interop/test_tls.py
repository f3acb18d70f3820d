"""`siotap proxy --tls auto`: HTTPS and WSS to clients, with a certificate minted by the local CA
(#12 Must 3). Clients: python-socketio (aiohttp, with an SSL context that trusts only the CA
made here) on every transport, and curl. A client that does not trust the CA fails its handshake,
and the capture says so."""
import json
import subprocess

import pytest

from conftest import SIOTAP, Proxy, Server, tls_client_story, wait_until

TRANSPORTS = {"websocket": ["websocket"], "polling": ["polling"], "upgrade": ["polling", "websocket"]}


@pytest.fixture(scope="module")
def backend():
    server = Server("--app", "conformance", "--ping-interval", "2000", "--ping-timeout", "2000")
    yield server
    server.stop()


@pytest.fixture
def tls_proxy(backend, tmp_path):
    ca_dir = tmp_path / "ca"
    subprocess.run([SIOTAP, "ca", "init", "--dir", str(ca_dir)], check=True, capture_output=True)
    proxy = Proxy(backend.url, tmp_path, "--tls", "auto", "--ca-dir", str(ca_dir))
    yield proxy, ca_dir / "ca.pem"
    proxy.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_python_socketio_over_tls(tls_proxy, transport):
    proxy, cafile = tls_proxy
    assert proxy.url.startswith("https://")
    seen, ack = tls_client_story(proxy.url, TRANSPORTS[transport], cafile, ("over tls", 1))
    assert seen == [["over tls", 1]]
    assert ack == b"\x00\xff"
    # A client may drop its last requests on disconnect: the close then comes when the session's
    # heartbeat window (2 + 2 s here, and a second) has passed.
    assert wait_until(lambda: any(r["kind"] == "close" for r in proxy.records()), timeout=10)
    records = proxy.records()
    assert [r["kind"] for r in records].count("session") == 1
    events = [(r["dir"], r.get("event"), r.get("args")) for r in records if r["kind"] == "packet" and r.get("event")]
    assert ("s2c", "message-back", ["over tls", 1]) in events
    assert ("c2s", "message-with-ack", [{"$binary": "AP8="}]) in events
    used = {r["transport"] for r in records if r["kind"] in ("packet", "engine")}
    assert used == set(TRANSPORTS[transport])
    # A polling client's last long-poll may reach the server after the session's close: the 400 it
    # gets is on the wire, and recorded. Nothing else may fail.
    closed_at = next((r["seq"] for r in records if r["kind"] == "engine" and r["type"] == "close" and r["dir"] == "c2s"), None)
    for error in (r for r in records if r["kind"] == "error"):
        assert error["code"] == "proxy.upstream_status" and closed_at and error["seq"] > closed_at, error


def test_curl_trusting_the_ca(tls_proxy):
    proxy, cafile = tls_proxy
    result = subprocess.run(
        ["curl", "-sS", "--cacert", str(cafile), f"{proxy.url}/socket.io/?EIO=4&transport=polling"],
        capture_output=True, text=True, timeout=10,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("0{") and "sid" in json.loads(result.stdout[1:])
    # By name too: the certificate is for localhost as well as 127.0.0.1.
    by_name = proxy.url.replace("127.0.0.1", "localhost")
    result = subprocess.run(["curl", "-sS", "--cacert", str(cafile), f"{by_name}/socket.io/?EIO=4&transport=polling"],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr


def test_a_client_that_does_not_trust_the_ca(tls_proxy):
    proxy, _ = tls_proxy
    # curl with the system's trust store only: the handshake fails on its side...
    result = subprocess.run(["curl", "-sS", f"{proxy.url}/socket.io/?EIO=4&transport=polling"],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 60, result.stderr  # CURLE_PEER_FAILED_VERIFICATION
    # ...and the capture says so, on the proxy's side.
    assert wait_until(lambda: any(r.get("code") == "proxy.tls_handshake" for r in proxy.records()))
    failure = next(r for r in proxy.records() if r.get("code") == "proxy.tls_handshake")
    assert failure["message"].startswith("127.0.0.1:") and "trust the certificate" in failure["message"], failure
    # Plain HTTP to the TLS port is refused too, and recorded.
    result = subprocess.run(["curl", "-sS", "--max-time", "5", proxy.url.replace("https://", "http://") + "/"],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode != 0
    assert wait_until(lambda: sum(r.get("code") == "proxy.tls_handshake" for r in proxy.records()) == 2)
    plain = [r for r in proxy.records() if r.get("code") == "proxy.tls_handshake"][1]
    assert "plain HTTP" in plain["message"], plain


def test_ssl_key_log_matches_the_clients(backend, tmp_path, monkeypatch):
    """SSLKEYLOGFILE: the proxy writes the session secrets Wireshark needs; curl, logging its own
    side of the same handshake, writes the very same ones."""
    ca_dir, proxy_log, curl_log = tmp_path / "ca", tmp_path / "proxy-keys.log", tmp_path / "curl-keys.log"
    subprocess.run([SIOTAP, "ca", "init", "--dir", str(ca_dir)], check=True, capture_output=True)
    monkeypatch.setenv("SSLKEYLOGFILE", str(proxy_log))
    proxy = Proxy(backend.url, tmp_path, "--tls", "auto", "--ca-dir", str(ca_dir))
    monkeypatch.delenv("SSLKEYLOGFILE")
    try:
        import os
        result = subprocess.run(["curl", "-sS", "--cacert", str(ca_dir / "ca.pem"), f"{proxy.url}/socket.io/?EIO=4&transport=polling"],
                                capture_output=True, text=True, timeout=10, env={**os.environ, "SSLKEYLOGFILE": str(curl_log)})
        assert result.returncode == 0, result.stderr
    finally:
        proxy.stop()
    ours = set(proxy_log.read_text().splitlines())
    theirs = set(curl_log.read_text().splitlines())
    assert any(line.startswith("CLIENT_TRAFFIC_SECRET_0 ") for line in ours), ours
    assert theirs and theirs <= ours, (theirs - ours)
    assert oct(proxy_log.stat().st_mode & 0o777) == "0o600"
