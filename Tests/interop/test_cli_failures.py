"""How siotap's commands fail, as a user meets it: a server that refuses, one that redirects, one
that is not there. A run-time failure is one line on stderr saying what the server answered (or
what the socket said), with the URL, and exit 1; the usage text is only for usage errors (exit 2).
Every command's --help gives its exit codes and wraps at the terminal's width."""
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ROOT, SIOTAP, free_port

COMMANDS = ["demo", "proxy", "serve", "replay", "mock", "bench", "decode", "jwt", "redact"]


class FixedAnswer:
    """Answers every request with one status, headers and body (what a misconfigured path, an
    auth gateway or a redirecting load balancer says)."""

    def __init__(self, status, body=b"", headers=()):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def siotap(*args, env=None):
    return subprocess.run([SIOTAP, *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def refusing():
    server = FixedAnswer(400, b'{"code":3,"message":"Bad request"}', [("Content-Type", "application/json")])
    yield server
    server.stop()


@pytest.mark.parametrize("transport, scheme", [("websocket", "ws"), ("polling", "http")])
def test_bench_against_a_refusing_server_says_what_it_answered(refusing, transport, scheme):
    result = siotap("bench", "--target", refusing.url, "--transport", transport, "--clients", "1", "--messages", "1")
    assert result.returncode == 1
    host = refusing.url.split("//")[1]
    assert result.stderr.splitlines() == [
        f"siotap bench: GET {scheme}://{host}/socket.io/?EIO=4&transport={transport}: the server answered 400 Bad Request: "
        '{"code":3,"message":"Bad request"}']
    assert "Usage" not in result.stderr and result.stdout == ""


def test_a_redirect_is_reported_not_followed():
    server = FixedAnswer(302, b"", [("Location", "https://elsewhere.example/socket.io/")])
    try:
        result = siotap("bench", "--target", server.url, "--transport", "polling", "--clients", "1", "--messages", "1")
    finally:
        server.stop()
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "the server redirected (302 Found) to https://elsewhere.example/socket.io/; siotap does not follow redirects")


def test_nobody_listening():
    port = free_port()
    result = siotap("bench", "--target", f"http://127.0.0.1:{port}", "--clients", "1", "--messages", "1")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"siotap bench: GET ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket: cannot connect (connection refused)"]


def test_replay_against_a_refusing_server(refusing):
    result = siotap("replay", str(ROOT / "fixtures" / "conformance-binary.jsonl"), "--target", refusing.url, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["equal"] is False
    assert any("the server answered 400 Bad Request" in problem for problem in report["problems"])
    # Several conns refused: said in the capture's order, whichever failed first.
    several = siotap("replay", str(ROOT / "fixtures" / "chat-refused-tokens.jsonl"), "--target", refusing.url, "--json")
    problems = json.loads(several.stdout)["problems"]
    assert several.returncode == 1 and len(problems) == 3, problems
    assert [problem.split(":")[0] for problem in problems] == ["c1", "c2", "c3"], problems


def test_usage_errors_still_show_the_usage():
    result = siotap("bench", "--clients", "0")
    assert result.returncode == 2
    assert "--clients and --messages must be positive" in result.stderr and "Usage: siotap bench" in result.stderr


def test_a_port_in_use_is_a_runtime_failure():
    busy = FixedAnswer(200)
    try:
        result = siotap("serve", "--listen", busy.url.split("//")[1])
    finally:
        busy.stop()
    assert result.returncode == 1
    # (serve warns first that the chat app runs on the guide's default secret.)
    assert result.stderr.splitlines()[-1] == f"siotap serve: cannot listen on {busy.url.split('//')[1]}: address already in use"


def test_the_proxy_says_at_once_when_its_upstream_takes_no_connection(tmp_path):
    """(#27 item 10) Said on start, not at the first client's 502; the proxy still runs (the server
    may be on its way up). An upstream that listens gets no such line, and no request from it."""
    import signal
    from conftest import Server
    port = free_port()

    def started(upstream):
        process = subprocess.Popen([SIOTAP, "proxy", "--listen", "127.0.0.1:0", "--upstream", upstream, "--quiet"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        first = process.stderr.readline()
        assert "listening on" in first, first
        time.sleep(1)
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=10)
        assert process.returncode == 0
        return rest

    down = started(f"http://127.0.0.1:{port}")
    assert f"siotap proxy: warning: http://127.0.0.1:{port} takes no connection (cannot connect (connection refused)); clients get a 502 until it does" in down, down
    server = Server("--app", "conformance")
    try:
        assert "warning" not in started(server.url)
    finally:
        server.stop()


def test_import_of_a_file_that_is_no_capture_says_what_it_reads(tmp_path):
    junk = tmp_path / "notes.pcap"
    junk.write_bytes(b"these are notes, not packets\n" * 10)
    result = siotap("import", str(junk))
    assert result.returncode == 2
    assert result.stderr.strip() == f"siotap import: {junk}: not a pcap, pcapng or HAR file (libpcap: unknown file format)", result.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_help_gives_exit_codes_and_wraps_at_the_terminal_width(command):
    wide = siotap(command, "--help", env={"COLUMNS": "300"}).stdout
    narrow = siotap(command, "--help", env={"COLUMNS": "60"}).stdout
    assert "Exit codes: 0 " in wide
    # Sentences are not broken by hand: at 300 columns a paragraph is one line; at 60 every line fits
    # (but for unbreakable words such as a long example).
    exit_line = next(line for line in wide.splitlines() if line.startswith("Exit codes:"))
    assert exit_line.rstrip().endswith(".")
    # (ArgumentParser writes the USAGE line as one line; indented lines are examples and options.)
    assert [line for line in narrow.splitlines()
            if len(line) > 60 and " " in line.strip() and not line.startswith(("  ", "USAGE:"))] == []


def test_bench_logs_in_through_jwt_middleware():
    """Against python-socketio with the seed's JWT middleware (PyJWT verifies each token): without
    a token every client is refused, counted as such, with the server's reason; with --jwt-secret
    and --claim each client gets its own token and the chat's echo is benchmarked; a wrong secret
    is refused, not an error."""
    import json
    from conftest import SECRET, python_server
    server = python_server("chat")
    try:
        plain = siotap("bench", "--target", server.url, "--clients", "2", "--messages", "3", "--json")
        assert plain.returncode == 1
        counts = json.loads(plain.stdout)["connections"]
        assert counts["refused"] == 2 and counts["failed"] == 0 and counts["connected"] == 0
        assert "No token provided" in counts["first_refusal"] and "--jwt-secret" in plain.stderr
        minted = siotap("bench", "--target", server.url, "--clients", "3", "--messages", "4", "--json", "--jwt-secret", SECRET,
                        "--claim", "id={n}", "--claim", "name=bench", "--emit", "message", "--reply", "chat response")
        assert minted.returncode == 0, minted.stderr
        figures = json.loads(minted.stdout)
        assert figures["completed"] == figures["expected"] == 12 and figures["connections"]["connected"] == 3
        wrong = siotap("bench", "--target", server.url, "--clients", "1", "--messages", "1", "--json",
                       "--jwt-secret", "not-the-secret-0123456789abcdef0123")
        assert wrong.returncode == 1 and json.loads(wrong.stdout)["connections"]["refused"] == 1
    finally:
        server.stop()


def test_bench_signs_tokens_with_a_private_key(tmp_path):
    """--jwt-key: tokens signed with an RSA, EC (P-256, P-384) or Ed25519 private key, PEM as
    openssl and `cryptography` write them (PKCS#8, PKCS#1, SEC1), verified by PyJWT in
    python-socketio's chat against the public halves; --jwt-alg picks PS256 for the RSA key; a
    key the server does not trust is refused; a key that cannot sign what is asked is a usage error."""
    import json
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from conftest import python_server

    keys = {
        "rsa": (rsa.generate_private_key(public_exponent=65537, key_size=2048), serialization.PrivateFormat.TraditionalOpenSSL),
        "p256": (ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.TraditionalOpenSSL),
        "p384": (ec.generate_private_key(ec.SECP384R1()), serialization.PrivateFormat.PKCS8),
        "ed25519": (ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.PKCS8),
    }
    publics = []
    for name, (key, form) in keys.items():
        (tmp_path / f"{name}.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption()))
        (tmp_path / f"{name}.pub").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        publics.append(str(tmp_path / f"{name}.pub"))
    stranger = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "stranger.pem").write_bytes(stranger.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    server = python_server("chat", env={"JWT_PUBLIC_KEYS": ",".join(publics)})
    try:
        def bench(key, *extra):
            return siotap("bench", "--target", server.url, "--clients", "2", "--messages", "2", "--json",
                          "--jwt-key", str(tmp_path / key), "--claim", "id={n}", "--emit", "message", "--reply", "chat response", *extra)

        for key, extra in [("rsa.pem", []), ("rsa.pem", ["--jwt-alg", "PS256"]), ("p256.pem", []), ("p384.pem", []), ("ed25519.pem", [])]:
            result = bench(key, *extra)
            assert result.returncode == 0, f"{key} {extra}: {result.stdout} {result.stderr}"
            figures = json.loads(result.stdout)
            assert figures["completed"] == figures["expected"] == 4 and figures["connections"]["connected"] == 2
        refused = bench("stranger.pem")
        assert refused.returncode == 1 and json.loads(refused.stdout)["connections"]["refused"] == 2
        misfit = bench("p256.pem", "--jwt-alg", "RS256")
        assert misfit.returncode == 2 and "cannot sign RS256" in misfit.stderr
        public = bench("rsa.pub")
        assert public.returncode == 2 and "not a PEM private key" in public.stderr
    finally:
        server.stop()
