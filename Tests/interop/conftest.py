"""Starts the built-in server (`siotap serve`) for the interop and conformance tests.

Every server binds 127.0.0.1 on a port the system picks, and is stopped with SIGTERM at the end
(the test checks it exits 0: a clean shutdown is part of the contract).
"""
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

try:
    import engineio.payload
except ImportError:  # the conformance venv has no python-engineio
    engineio = None

# python-engineio's client gives up on a polling answer of more than 16 packets ("Unexpected packet
# from server, aborting": `Payload.max_decode_packets`, a guard against hostile servers), and
# servers send longer ones whenever deliveries pile up between two polls, as they do on a loaded
# machine (a CI run lost three polling clients of the causal-order test to one answer of 18).
# What siotap relays does not depend on it; the tests' clients take any length.
if engineio is not None:
    engineio.payload.Payload.max_decode_packets = 100_000

ROOT = pathlib.Path(__file__).resolve().parents[2]
SIOTAP = os.environ.get("SIOTAP_BIN", str(ROOT / ".build" / "debug" / "siotap"))
PY4 = str(ROOT / ".venv-peers4" / "bin" / "python")
SECRET = "interop-secret-long-enough-for-hs256!"


def pytest_configure(config):
    config.addinivalue_line("markers", "diagnosed: the test makes failures on purpose; its captures may hold diagnoses")


# Every capture a test makes is checked for diagnoses after it (#28: no false alarms): a healthy
# session must diagnose clean. Tests that make failures on purpose say so with
# @pytest.mark.diagnosed. Captures of proxies that outlive a test (module fixtures) are checked
# for what was added during it.
_captures = {}
# (capture, conn) -> whether the test that opened the conn makes failures on purpose: a diagnosis
# written after that test ended (a module's proxy closes conns later) stays its own.
_conn_owners = {}


def watch_capture(path):
    _captures.setdefault(str(path), 0)


def new_diagnoses(on_purpose):
    """The diagnosis records added to the watched captures since the last look, but for those of
    conns opened by a test that makes failures on purpose; conns opened since are this test's."""
    import json
    found = []
    for path, offset in list(_captures.items()):
        try:
            with open(path, "rb") as file:
                file.seek(offset)
                data = file.read()
        except OSError:
            continue
        complete = data[: data.rfind(b"\n") + 1]
        _captures[path] = offset + len(complete)
        for line in complete.splitlines():
            if b'"kind":"session"' in line:
                _conn_owners.setdefault((path, json.loads(line).get("conn")), on_purpose)
            elif b'"kind":"diagnosis"' in line:
                record = json.loads(line)
                if not _conn_owners.get((path, record.get("conn")), on_purpose):
                    found.append(f"{pathlib.Path(path).name} {record.get('conn')}: {record['code']}: {record['message']}")
    return found


@pytest.fixture(autouse=True)
def no_false_alarms(request):
    on_purpose = request.node.get_closest_marker("diagnosed") is not None
    earlier = new_diagnoses(on_purpose=False)  # written between tests: conns of earlier tests
    yield
    tmp = request.node.funcargs.get("tmp_path")
    if tmp is not None:
        for path in pathlib.Path(tmp).rglob("*.jsonl"):
            watch_capture(path)
    time.sleep(0.05)
    found = earlier + new_diagnoses(on_purpose)
    if found and not on_purpose:
        pytest.fail("diagnoses in a healthy test's capture (a false alarm, or mark the test @pytest.mark.diagnosed):\n" + "\n".join(found[:10]),
                    pytrace=False)


class Process:
    """A server-like process that must stop cleanly on SIGTERM."""

    name = "process"

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"{self.name} did not stop on SIGTERM")
        if self.checks_exit_code:
            assert code == 0, f"{self.name} exited {code}: {self.process.stderr.read()}"


class Server(Process):
    name = "siotap serve"

    def __init__(self, *args, command=None, env=None):
        self.process = subprocess.Popen(
            command or [SIOTAP, "serve", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        line = self.process.stdout.readline()
        if "listening on" not in line:
            self.process.kill()
            raise RuntimeError(f"siotap serve did not start: {line!r} {self.process.stderr.read()!r}")
        address = line.strip().split("listening on ")[1]
        scheme, rest = address.split("//", 1)
        authority, _, path = rest.partition("/")
        self.url = f"{scheme}//{authority}"
        self.path = "/" + path  # where Engine.IO is mounted, with its trailing slash
        self.checks_exit_code = command is None  # the Python servers end on SIGTERM by default
        self.host, self.port = authority.split(":")


def python_server(app, generation=5, stack="aiohttp", path="socket.io", tls=None, serializer=None, env=None):
    """The same contract on python-socketio (Tests/interop/python_server.py): 5.x, or 4.x for
    Engine.IO 3 clients; on aiohttp, or on uvicorn (ASGI), with TLS when `tls` is (cert, key);
    with the msgpack parser when `serializer` is "msgpack"; `env` adds to its environment."""
    python = str(ROOT / (".venv-peers" if generation == 5 else ".venv-peers4-server") / "bin" / "python")
    return Server(command=[python, str(ROOT / "Tests" / "interop" / "python_server.py"), app, SECRET, stack, path,
                           *(map(str, tls) if tls else [])],
                  env={**os.environ, **({"SERIALIZER": serializer} if serializer else {}), **(env or {})}
                  if serializer or env else None)


@pytest.fixture(scope="module")
def conformance():
    server = Server("--app", "conformance", "--ping-interval", "300", "--ping-timeout", "200",
                    "--connect-timeout", "1000", "--cors", "*")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chat():
    server = Server("--app", "chat", "--jwt-secret", SECRET, "--ping-interval", "2000", "--ping-timeout", "2000")
    yield server
    server.stop()


def tls_client_story(url, transports, cafile, message, trust_env=False):
    """python-socketio's asyncio client trusting only `cafile` (and, with `trust_env`, taking its
    proxy from the environment, as aiohttp does only when asked): connects on `transports`, sends
    `message` (a tuple of arguments), asks for an ack of two bytes, disconnects. Returns the
    echoes that came back and the ack."""
    import asyncio
    import ssl

    import aiohttp
    import socketio

    async def run():
        context = ssl.create_default_context(cafile=str(cafile))
        async with aiohttp.ClientSession(trust_env=trust_env, connector=aiohttp.TCPConnector(ssl=context)) as http:
            client = socketio.AsyncClient(reconnection=False, http_session=http)
            seen = []
            client.on("message-back", lambda *args: seen.append(list(args)))
            await client.connect(url, transports=transports, wait_timeout=5)
            assert client.transport() == transports[-1]
            await client.emit("message", message)
            ack = await client.call("message-with-ack", b"\x00\xff", timeout=5)
            deadline = asyncio.get_running_loop().time() + 5
            while not seen and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
            # python-engineio's polling write loop runs while the client is 'connected': a
            # disconnect during a POST still on its way (the ack can come back by the long poll
            # first) ends the loop before it sends the close, and the session then ends by ping
            # timeout, which the capture rightly diagnoses. Every packet is marked done once its
            # POST is answered: wait for that first.
            await asyncio.wait_for(client.eio.queue.join(), 5)
            await client.disconnect()
            return seen, ack

    return asyncio.run(asyncio.wait_for(run(), 30))


def wait_until(predicate, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class Proxy(Process):
    """`siotap proxy` in front of `upstream`, recording to a file in `directory`; with no
    upstream, `args` must say `--mode forward`."""

    name = "siotap proxy"
    checks_exit_code = True

    def __init__(self, upstream_url, directory, *args):
        self.capture = pathlib.Path(directory) / "capture.jsonl"
        watch_capture(self.capture)
        self.process = subprocess.Popen(
            [SIOTAP, "proxy", "--listen", "127.0.0.1:0", *(["--upstream", upstream_url] if upstream_url else []),
             "--record", str(self.capture), "--quiet", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.process.stderr.readline()
        while line.startswith("siotap proxy: made a local CA"):
            line = self.process.stderr.readline()
        if "listening on" not in line and "forward proxy on" not in line:
            self.process.kill()
            raise RuntimeError(f"siotap proxy did not start: {line!r}")
        self.start_line = line
        self.url = line.split(" on ", 1)[1].split(",")[0].split(" ")[0].strip()
        self.host, self.port = self.url.split("//")[1].split(":")

    def records(self):
        """The records written so far. A line without its newline is still being written (the
        capture is written after the traffic has gone on, and a large line takes more than one
        page): it is left for the next look, as a reader tailing the file does."""
        import json
        text = self.capture.read_text()
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]


def free_port():
    """A loopback port nobody listens on now (for servers that cannot be told to pick one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, process, what, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited {process.returncode}: {process.stderr.read()!r}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{what} did not listen on {port}")


class Nginx(Process):
    """nginx (Debian nginx-light) in front of `upstream_port`, with Tests/interop/stacks/nginx.conf;
    or, set up wrong as deployments are: round-robin over `more_ports` too (no ip_hash), without
    the WebSocket headers (`upgrade_headers=False`), with a short `read_timeout`."""

    name = "nginx"
    checks_exit_code = False  # nginx ends on SIGTERM with its own code

    def __init__(self, upstream_port, more_ports=(), upgrade_headers=True, read_timeout="60s"):
        self.directory = tempfile.mkdtemp(prefix="siotap-nginx-")
        self.port = free_port()
        template = (ROOT / "Tests" / "interop" / "stacks" / "nginx.conf").read_text()
        config = pathlib.Path(self.directory) / "nginx.conf"
        servers = " ".join(f"server 127.0.0.1:{port};" for port in [upstream_port, *more_ports])
        headers = ("proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;"
                   if upgrade_headers else "")
        config.write_text(template.replace("{dir}", self.directory).replace("{port}", str(self.port))
                          .replace("{servers}", servers).replace("{upgrade_headers}", headers)
                          .replace("{read_timeout}", read_timeout))
        self.process = subprocess.Popen(["nginx", "-c", str(config), "-p", self.directory],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for_port(self.port, self.process, "nginx")
        self.host = "127.0.0.1"
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        super().stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class Gunicorn(Process):
    """Flask-SocketIO (Tests/interop/stacks/flask_server.py) under gunicorn's threaded worker."""

    name = "gunicorn"
    checks_exit_code = False

    def __init__(self):
        self.port = free_port()
        self.process = subprocess.Popen(
            [str(ROOT / ".venv-peers" / "bin" / "gunicorn"), "-w", "1", "-k", "gthread", "--threads", "64",
             "-b", f"127.0.0.1:{self.port}", "--no-control-socket", "--log-level", "warning", "--chdir", str(ROOT / "Tests" / "interop" / "stacks"),
             "flask_server:app"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for_port(self.port, self.process, "gunicorn")
        self.host = "127.0.0.1"
        self.url = f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def js_browser():
    """Headless Chromium (Debian's, through Playwright) with `page_url`: a blank page on another
    port of 127.0.0.1 that loads the official socket.io-client 4.8.1 bundle, for tests that drive
    `io` themselves."""
    from playwright.sync_api import sync_playwright

    from test_browser import PageServer
    pages = PageServer(page=ROOT / "Tests" / "interop" / "browser" / "blank.html")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        chromium.page_url = f"{pages.url}/blank.html"
        yield chromium
        chromium.close()
    pages.stop()
