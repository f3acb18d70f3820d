"""`siotap proxy --upstream https://...` (#12 Must 2): python-socketio under uvicorn serving TLS
with certificates made here (the `cryptography` package), the proxy trusting their CA through
--upstream-ca. Bad certificates (expired, for another name, from an unknown CA) give the client
a 502 and the capture a `proxy.upstream_tls` record saying which, and a `close`."""
import asyncio
import datetime
import ipaddress

import pytest
import requests
import socketio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import Proxy, python_server, wait_until

NOW = datetime.datetime.now(datetime.timezone.utc)


def name(common):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(directory, label):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name(label)).issuer_name(name(label)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    path = directory / f"{label}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key, path


def make_leaf(directory, label, ca, *, san, expired=False):
    ca_cert, ca_key, _ = ca
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = (NOW - datetime.timedelta(days=10), NOW - datetime.timedelta(days=1)) if expired else \
        (NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=10))
    cert = (x509.CertificateBuilder().subject_name(name(label)).issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = directory / f"{label}.pem", directory / f"{label}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


LOCAL = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))


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


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_through_to_a_tls_upstream(tls_upstream, pki, transport, tmp_path):
    assert tls_upstream.url.startswith("https://")
    proxy = Proxy(tls_upstream.url, tmp_path, "--upstream-ca", str(pki[1][2]))

    async def story():
        client = socketio.AsyncClient(reconnection=False)
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
    finally:
        proxy.stop()


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
