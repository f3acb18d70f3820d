"""`siotap doctor` (#28) against real servers, set up right and as deployments get them wrong:
python-socketio directly, behind nginx without the WebSocket headers, round-robin over two
servers without ip_hash, with proxy_read_timeout below the heartbeat, with CORS for one origin
only, with a refused token and an unknown namespace."""
import json
import subprocess
import time

import jwt
import pytest

from conftest import SECRET, SIOTAP, Nginx, python_server
from test_chat_interop import token


def doctor(url, *args, timeout=60):
    result = subprocess.run([SIOTAP, "doctor", url, "--json", "--timeout", "3", *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert report["target"].startswith(url)
    for check in report["checks"]:
        assert set(check) <= {"name", "status", "detail", "fix"} and check["status"] in ("pass", "warn", "fail")
    return report, result.returncode


def status(report, prefix):
    found = [c for c in report["checks"] if c["name"].startswith(prefix)]
    assert found, f"no check {prefix!r}: {[c['name'] for c in report['checks']]}"
    return found[0]


@pytest.fixture(scope="module")
def python_chat():
    server = python_server("chat")
    yield server
    server.stop()


def test_a_healthy_server_passes(python_chat):
    report, code = doctor(python_chat.url, "--token", token(1))
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert code == 0 and not failed, failed
    names = [c["name"] for c in report["checks"]]
    for expected in ["polling handshake", "Engine.IO 3", "server parameters", "sticky sessions", "WebSocket, directly",
                     "WebSocket upgrade after polling", "CONNECT to /", "an idle connection"]:
        assert any(name.startswith(expected) for name in names), (expected, names)
    assert "pingInterval 2 s" in status(report, "server parameters")["detail"]
    assert "refused" in status(report, "Engine.IO 3")["detail"], "python-socketio 5 speaks Engine.IO 4 only"


def test_the_text_report(python_chat):
    result = subprocess.run([SIOTAP, "doctor", python_chat.url, "--quick", "--token", token(1)], capture_output=True, text=True,
                            timeout=60, env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pass  WebSocket, directly" in result.stdout and "failed" in result.stdout.splitlines()[-1]
    assert "idle connection" not in result.stdout, "--quick skips it"


def test_nginx_without_the_websocket_headers(python_chat):
    nginx = Nginx(python_chat.port, upgrade_headers=False)
    try:
        report, code = doctor(nginx.url, "--quick", "--token", token(1), "--namespace", "/", "--namespace", "/nope")
        assert code == 1
        # Without WebSocket, the namespaces are tried over long-polling, as a client falls back.
        assert status(report, "CONNECT to / over long-polling")["status"] == "pass"
        assert status(report, "CONNECT to /nope over long-polling")["status"] == "fail"
        for name in ["WebSocket, directly", "WebSocket upgrade after polling"]:
            check = status(report, name)
            assert check["status"] == "fail" and "Upgrade" in check["fix"], check
        assert status(report, "polling handshake")["status"] == "pass"
    finally:
        nginx.stop()


def test_round_robin_without_sticky_sessions():
    first, second = python_server("chat"), python_server("chat")
    nginx = Nginx(first.port, more_ports=[second.port])
    try:
        report, code = doctor(nginx.url, "--quick")
        check = status(report, "sticky sessions")
        assert code == 1 and check["status"] == "fail" and "ip_hash" in check["fix"], check
    finally:
        nginx.stop()
        first.stop()
        second.stop()


def test_an_idle_timeout_below_the_heartbeat(python_chat):
    nginx = Nginx(python_chat.port, read_timeout="1s")
    try:
        report, code = doctor(nginx.url, "--token", token(1))
        check = status(report, "an idle connection")
        assert code == 1 and check["status"] == "fail" and "proxy_read_timeout" in check["fix"], check
    finally:
        nginx.stop()


def test_cors_for_an_origin_the_server_refuses():
    server = python_server("chat", env={"CORS_ORIGINS": "https://app.example.com"})
    try:
        allowed, code = doctor(server.url, "--quick", "--origin", "https://app.example.com", "--token", token(1))
        assert code == 0 and status(allowed, "CORS for")["status"] == "pass"
        refused, code = doctor(server.url, "--quick", "--origin", "https://evil.example.com", "--token", token(1))
        check = status(refused, "CORS for")
        assert code == 1 and check["status"] == "fail" and "not an accepted origin" in check["detail"], check
    finally:
        server.stop()


def test_a_refused_token_and_an_unknown_namespace(python_chat):
    now = int(time.time())
    expired = jwt.encode({"id": 1, "iat": now - 7200, "exp": now - 3600}, SECRET, algorithm="HS256")
    report, code = doctor(python_chat.url, "--quick", "--token", expired)
    check = status(report, "CONNECT to /")
    assert code == 1 and check["status"] == "fail" and "Invalid token" in check["detail"], check
    report, code = doctor(python_chat.url, "--quick", "--token", token(1), "--namespace", "/", "--namespace", "/nope")
    assert status(report, "CONNECT to /nope")["status"] == "fail" and code == 1
    assert [c["status"] for c in report["checks"] if c["name"] == "CONNECT to /"] == ["pass"]


def test_nothing_listening():
    report, code = doctor("http://127.0.0.1:9", "--quick")
    assert code == 1 and status(report, "polling handshake")["status"] == "fail"


def test_a_server_on_another_path():
    server = python_server("chat", path="app/socket.io")
    try:
        report, code = doctor(server.url + "/app/socket.io/", "--quick", "--token", token(1))
        assert code == 0 and report["target"].endswith("/app/socket.io/"), report
        missing, code = doctor(server.url, "--quick")
        assert code == 1 and "URL" in status(missing, "polling handshake")["fix"]
    finally:
        server.stop()


def test_a_server_that_never_answers_the_upgrade():
    """A listener that takes connections and answers nothing: every step gives up at its deadline
    (--timeout), and the report says so, in bounded time."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []
    threading.Thread(target=lambda: [held.append(listener.accept()) for _ in range(16)], daemon=True).start()
    try:
        started = time.monotonic()
        report, code = doctor(f"http://127.0.0.1:{listener.getsockname()[1]}", "--quick", timeout=30)
        assert code == 1 and time.monotonic() - started < 20
        assert status(report, "polling handshake")["status"] == "fail"
        assert status(report, "WebSocket, directly")["status"] == "fail"
    finally:
        listener.close()
