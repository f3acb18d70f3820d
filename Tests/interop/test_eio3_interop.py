"""python-socketio 4.x clients (Socket.IO v4, Engine.IO 3) against the built-in server."""
import json
import subprocess
import time

import jwt
import pytest

from conftest import PY4, ROOT, SECRET, Server

TRANSPORTS = ["websocket", "polling", "polling,websocket"]


def scenario(name, server, transports, token=None):
    args = [PY4, str(ROOT / "Tests" / "interop" / "peers4" / "scenario.py"), name, server.url, transports]
    if token:
        args.append(token)
    completed = subprocess.run(args, capture_output=True, text=True, timeout=20)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result: {completed.stdout!r} {completed.stderr[-2000:]!r}"
    return json.loads(lines[-1])


def token(user_id, secret=SECRET, lifetime=3600):
    now = int(time.time())
    return jwt.encode({"id": user_id, "iat": now, "exp": now + lifetime}, secret, algorithm="HS256")


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_chat(chat, transports):
    result = scenario("chat", chat, transports, token(4))
    assert "exception" not in result, result["exception"]
    assert result["transport"] == transports.split(",")[-1]
    events = result["events"]
    assert ["chat response", ["You sent: hi"]] in events
    assert ["roomJoined", ["public-4"]] in events
    assert ["notification", [{"message": "self"}]] in events
    assert ["user disconnected", ["4"]] in events


@pytest.mark.parametrize("transports", TRANSPORTS)
@pytest.mark.parametrize("kind,message", [
    ("none", "Authentication error: No token provided"),
    ("bad", "Authentication error: Invalid token"),
    ("expired", "Authentication error: Invalid token"),
])
def test_refused(chat, transports, kind, message):
    value = {"none": None, "bad": token(4, secret="wrong-secret-wrong-secret-wrong!!"), "expired": token(4, lifetime=-5)}[kind]
    result = scenario("refused", chat, transports, value)
    # Protocol v4 sends the refusal as a string CONNECT_ERROR (ERROR) on every transport.
    assert ["connect_error", [message]] in result["events"]


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_conformance(conformance, transports):
    result = scenario("conformance", conformance, transports)
    assert result["transport"] == transports.split(",")[-1]
    events = result["events"]
    assert "exception" not in result, result["exception"]
    # Like socket.io 3+ in allowEIO3 mode: `/` is joined implicitly, with an empty auth.
    assert ["auth", [{}]] in events
    backs = [args for label, args in events if label == "message-back"]
    assert backs[0] == ["0102", {"k": "03"}, 12345678901234567890]
    assert result["ack"] == ["x", "ff00"]
    assert ["/custom message-back", ["custom!"]] in events
    assert [args[0] for args in backs[1:]] == list(range(100))


@pytest.fixture(scope="module")
def large():
    server = Server("--app", "conformance", "--max-payload", "3000000")
    yield server
    server.stop()


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_large_payloads(large, transports):
    result = scenario("large", large, transports)
    assert "exception" not in result, result["exception"]
    assert result["text_ok"] and result["blob_ok"]
