"""Replay after the recorded JWT expired (#27 Must 1): python-socketio's chat verifying tokens
with PyJWT against public keys (RS256, ES256, EdDSA) and a secret (HS256). A session recorded
through the proxy with a token that expires seconds later: replayed as is, the server refuses
the CONNECT it accepted, and the report says first why (the token expired at …) and what to do;
re-minted with the private key (--jwt-key) or the secret (--jwt-secret), claims and `kid` kept
and times shifted to now, it replays the same."""
import asyncio
import json
import subprocess
import time

import jwt
import pytest
import socketio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from conftest import SECRET, SIOTAP, Proxy, python_server, wait_until

LIFETIME = 3  # seconds: the token expires before the replay


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Private keys as files (PEM, as `cryptography` writes them), and the chat server trusting
    their public halves."""
    folder = tmp_path_factory.mktemp("keys")
    made = {
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    }
    files, publics = {}, []
    for alg, key in made.items():
        private = folder / f"{alg}.pem"
        private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        public = folder / f"{alg}.pub"
        public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        files[alg] = (key, private)
        publics.append(str(public))
    server = python_server("chat", env={"JWT_PUBLIC_KEYS": ",".join(publics)})
    yield files, server
    server.stop()


def record_session(server, directory, token):
    """A session through the proxy: the token in `auth`, a chat message and its reply."""
    proxy = Proxy(server.url, directory, "--jwt-secret", SECRET)

    async def story():
        client = socketio.AsyncClient(reconnection=False)
        replies = []
        client.on("chat response", replies.append)
        await client.connect(proxy.url, auth={"token": token}, transports=["websocket"], wait_timeout=5)
        await client.emit("message", {"message": "before it expired", "sender": "ada"})
        while not replies:
            await asyncio.sleep(0.02)
        await client.disconnect()
        return replies

    try:
        assert asyncio.run(asyncio.wait_for(story(), 10)) == ["You sent: before it expired"]
        assert wait_until(lambda: any(r["kind"] == "close" for r in proxy.records()), timeout=10)
    finally:
        proxy.stop()
    return proxy.capture


def replay(capture, target, *args):
    result = subprocess.run([SIOTAP, "replay", str(capture), "--target", target, "--json", *args], capture_output=True, text=True, timeout=60)
    return result, json.loads(result.stdout)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA", "HS256"])
def test_an_expired_token_is_explained_and_re_minted(keys, alg, tmp_path):
    files, server = keys
    now = int(time.time())
    claims = {"id": 42, "name": "ada", "iat": now, "exp": now + LIFETIME}
    headers = {"kid": f"key-{alg}"}
    signing = SECRET if alg == "HS256" else files[alg][0]
    capture = record_session(server, tmp_path, jwt.encode(claims, signing, algorithm=alg, headers=headers))
    time.sleep(max(0, now + LIFETIME + 1 - time.time()))

    # Printed first in the readable report too; what never comes is waited for 0.5 s, not 3.
    stale = subprocess.run([SIOTAP, "replay", str(capture), "--target", server.url, "--timeout-ms", "500", "--report", str(tmp_path / "stale.json")],
                           capture_output=True, text=True, timeout=60)
    report = json.loads((tmp_path / "stale.json").read_text())
    assert stale.stdout.splitlines()[0] == report["explanations"][0]
    assert stale.returncode == 1
    explanation = report["explanations"][0]
    assert explanation.startswith("c1: the server refused the CONNECT to / (\"Authentication error: Invalid token\")"), explanation
    expired_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + LIFETIME))
    assert f"the recorded token expired at {expired_at}" in explanation and "--jwt-secret or --jwt-key" in explanation, explanation

    # Re-minted: through a proxy of its own, to see what the server got.
    (tmp_path / "replayed").mkdir()
    watching = Proxy(server.url, tmp_path / "replayed", "--jwt-secret", SECRET)
    try:
        key_args = ["--jwt-secret", SECRET] if alg == "HS256" else ["--jwt-key", str(files[alg][1])]
        fresh, report = replay(capture, watching.url, *key_args)
        assert fresh.returncode == 0 and report["equal"] is True and report["explanations"] == [], json.dumps(report, indent=1) + fresh.stderr
        assert wait_until(lambda: any(r["kind"] == "jwt" for r in watching.records()), timeout=5)
    finally:
        watching.stop()
    minted = [r for r in watching.records() if r["kind"] == "jwt"][0]
    assert minted["header"]["alg"] == alg and minted["header"]["kid"] == f"key-{alg}", minted
    assert {k: minted["claims"][k] for k in ("id", "name")} == {"id": 42, "name": "ada"}
    assert minted["claims"]["exp"] - minted["claims"]["iat"] == LIFETIME and minted["claims"]["exp"] > time.time()


def test_a_key_that_cannot_sign_is_refused_before_anything_runs(keys, tmp_path):
    files, server = keys
    public = files["ES256"][1].with_suffix(".pub")
    from conftest import ROOT
    result = subprocess.run([SIOTAP, "replay", str(ROOT / "fixtures" / "chat-websocket.jsonl"), "--target", server.url, "--jwt-key", str(public)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "not a PEM private key" in result.stderr, result.stderr
    both = subprocess.run([SIOTAP, "replay", "x.jsonl", "--jwt-key", str(public), "--jwt-secret", "s"], capture_output=True, text=True, timeout=30)
    assert both.returncode == 2 and "not both" in both.stderr
