"""The README's command blocks, run as a reader would run them (#26): a README that drifts from
siotap fails here. Each ```sh block says how it is run in the HTML comment before it:

  run                     the block, in a shell, must exit 0
  background="TEXT"       one long-running command: started, ready once it prints TEXT, then
                          stopped with Ctrl-C (SIGINT), which must exit 0
  server                  with "your app's server" on :3001: the built-in chat app, the seed
                          guide's server (its JWT middleware, chat, rooms)
  client                  once ready, the seed guide's client talks through :8080 (a token in
                          `auth`, a chat message, its reply); the command's output must show it
  dist                    in a folder holding the packages (scripts/package.sh, here made from
                          the binary under test), with a fresh venv and npm offline
  files                   with session.pcap (tcpdump of a session on :3001), session.har, and
                          "your client": my_client.py (python-socketio) and my_client.js (the
                          official socket.io-client), each connecting to the URL it is given with
                          a token, sending a chat message and printing the reply
  while-previous          while the background command of the block before still runs
  repo                    in the repository's root (a contributor's command)
  by=SCRIPT               run by SCRIPT instead (too slow, or the test command itself): the
                          script must contain the block's command

The blocks run in README order in one folder, as a reader following it would (the recording
made by one block is replayed by a later one), with HOME in that folder."""
import json
import os
import pathlib
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest
import socketio

from conftest import ROOT, SECRET, SIOTAP, wait_until
from test_chat_interop import token
from test_import import Tcpdump
from test_inspector import HAR

README = ROOT / "README.md"
BUNDLE = ROOT / ".peers" / "js" / "socket.io-4.8.1.min.js"

# "Your client", as the README's recipes call it: the seed guide's, given the server's URL.
MY_CLIENT_PY = f"""import os, sys, time
sys.path[:0] = {[str(p) for p in sys.path if "site-packages" in p]!r}  # python-socketio from the test peers' venv
import jwt, socketio
token = jwt.encode({{"id": 7, "name": "ada", "exp": int(time.time()) + 600}}, os.environ["JWT_SECRET"], algorithm="HS256")
replies = []
client = socketio.Client(reconnection=False)
client.on("chat response", replies.append)
client.connect(sys.argv[1], auth={{"token": token}}, wait_timeout=5)
client.emit("message", {{"message": "hello from the README", "sender": "ada"}})
for _ in range(100):
    if replies:
        break
    time.sleep(0.05)
client.disconnect()
print(replies[0] if replies else "no reply")
"""

MY_CLIENT_JS = f"""const crypto = require('crypto');
const io = require({json.dumps(str(BUNDLE))});
const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
const body = part({{alg: 'HS256', typ: 'JWT'}}) + '.' + part({{id: 7, name: 'ada', exp: Math.floor(Date.now() / 1000) + 600}});
const token = body + '.' + crypto.createHmac('sha256', process.env.JWT_SECRET).update(body).digest('base64url');
const socket = io(process.argv[2], {{ transports: ['websocket'], auth: {{ token }} }});
const timer = setTimeout(() => {{ console.log('no reply'); process.exit(1); }}, 10000);
socket.on('chat response', (reply) => {{ console.log(reply); clearTimeout(timer); socket.close(); }});
socket.on('connect', () => socket.emit('message', {{ message: 'hello from the README', sender: 'ada' }}));
socket.on('connect_error', (error) => {{ console.log('connect_error', error.message); process.exit(1); }});
"""
PORTS = (3001, 8080, 8081, 8443)


def blocks():
    """(line, marker, command text) for each ```sh block of the README."""
    lines = README.read_text().splitlines()
    found = []
    for index, line in enumerate(lines):
        if line.strip() != "```sh":
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
        before = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marker = re.fullmatch(r"<!-- readme-test: (.*) -->", before.strip())
        found.append((index + 1, marker.group(1) if marker else None, "\n".join(lines[index + 1:end])))
    return found


def options(marker):
    parsed = {}
    for word in shlex.split(marker):
        key, _, value = word.partition("=")
        parsed[key] = value or True
    unknown = set(parsed) - {"run", "background", "server", "client", "dist", "files", "repo", "by", "while-previous"}
    assert not unknown, f"unknown readme-test keys {unknown}"
    return parsed


def test_every_block_says_how_it_is_run():
    found = blocks()
    assert len(found) >= 8
    missing = [line for line, marker, _ in found if marker is None]
    assert not missing, f"README.md: ```sh blocks without a readme-test marker at lines {missing}"
    for _, marker, _ in found:
        options(marker)
    assert len(README.read_text().splitlines()) <= 200


@pytest.mark.diagnosed  # refuses a token on purpose
def test_the_readme_commands(tmp_path):
    for port in PORTS:
        assert not port_open(port), f"port {port} is taken: the README's commands use it"
    work = Workspace(tmp_path)
    found = blocks()
    try:
        for index, (line, marker, text) in enumerate(found):
            following = options(found[index + 1][1]) if index + 1 < len(found) else {}
            work.run(line, options(marker), text, keep="while-previous" in following)
    finally:
        work.stop()


def node_major():
    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip().lstrip("v")
    return int(version.split(".")[0]) if version else 0


def port_open(port):
    import socket
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Workspace:
    def __init__(self, tmp_path):
        self.dir = tmp_path / "reader"
        self.dir.mkdir()
        home = tmp_path / "home"
        home.mkdir()
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "siotap").symlink_to(SIOTAP)
        if os.geteuid() == 0:
            # Chromium will not start as root without --no-sandbox (CI runs as root): what the
            # reader types, with that one flag added.
            shim = bin_dir / "chromium"
            shim.write_text('#!/bin/sh\nexec /usr/bin/chromium --no-sandbox "$@"\n')
            shim.chmod(0o755)
        venv = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        self.env = {
            **os.environ,
            "HOME": str(home),
            # What the reader installs comes first; the binary under test otherwise.
            "PATH": os.pathsep.join([str(home / ".local" / "bin"), str(venv / "bin"), str(bin_dir), os.environ["PATH"]]),
            "VIRTUAL_ENV": str(venv),
            "npm_config_offline": "true", "npm_config_audit": "false", "npm_config_fund": "false",
            "npm_config_update_notifier": "false", "npm_config_cache": str(tmp_path / "npm-cache"),
            "JWT_SECRET": SECRET,
            "NO_COLOR": "1",
            # The browser bundle of socket.io-client uses the global WebSocket, behind a flag in node 20.
            **({"NODE_OPTIONS": "--experimental-websocket"} if node_major() in (20, 21) else {}),
        }
        self.server = None
        self.kept = None

    def run(self, line, marker, text, keep=False):
        """`keep`: a background command goes on running for the next block."""
        where = f"README.md:{line}: {text!r}"
        if "by" in marker:
            script = (ROOT / marker["by"]).read_text()
            for command in filter(None, (c.split(" #")[0].strip() for c in text.splitlines())):
                assert command in script, f"{where} is said to be run by {marker['by']}, which does not run it"
            return
        if "dist" in marker:
            subprocess.run([str(ROOT / "scripts" / "package.sh"), "--binary", SIOTAP, "--out", str(self.dir)],
                           check=True, capture_output=True, env=self.env)
        if "server" in marker or "files" in marker:
            self.start_server()
        if "files" in marker:
            self.make_files()
        if "background" in marker:
            self.background(where, marker, text, keep)
        else:
            result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", text], cwd=ROOT if "repo" in marker else self.dir, env=self.env,
                                    capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, f"{where} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            if "files" in marker and "my_client" in text:
                # Each client printed the chat's reply, and curl and Chromium the handshake: each got
                # through, trusting the CA (Chromium's error page holds no sid).
                assert result.stdout.count("You sent: hello from the README") == text.count("my_client"), result.stdout
                fetches = sum(line.startswith(("curl ", "chromium ")) for line in text.splitlines())
                assert result.stdout.count('"sid"') == fetches, result.stdout
        if "while-previous" in marker:
            self.stop_kept()
        if not keep and "server" not in marker and "files" not in marker and "while-previous" not in marker:
            self.stop_server()

    def stop_kept(self):
        process, where, printed = self.kept
        self.kept = None
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=15)
        assert code == 0, f"{where}: Ctrl-C made it exit {code}:\n{printed()}"

    def background(self, where, marker, text, keep=False):
        assert "\n" not in text.strip(), f"{where}: a background block holds one command"
        out, err = self.dir / "block.out", self.dir / "block.err"
        with open(out, "w") as stdout, open(err, "w") as stderr:
            process = subprocess.Popen(["bash", "-c", f"exec {text}"], cwd=self.dir, env=self.env, stdout=stdout, stderr=stderr,
                                       start_new_session=True)
        try:
            printed = lambda: out.read_text() + err.read_text()
            ready = wait_until(lambda: marker["background"] in printed() or process.poll() is not None, timeout=30)
            assert ready and process.poll() is None, f"{where} did not get ready:\n{printed()}"
            if "client" in marker:
                reply = chat_through(8080)
                assert reply == "You sent: hello from the README", reply
                assert wait_until(lambda: "chat response" in printed(), timeout=10), f"{where} did not show the exchange:\n{printed()}"
        except BaseException:
            process.kill()
            raise
        if keep:
            self.kept = (process, where, printed)
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        code = process.wait(timeout=15)
        assert code == 0, f"{where}: Ctrl-C made it exit {code}:\n{printed()}"

    def start_server(self):
        if self.server:
            return
        self.server = subprocess.Popen([SIOTAP, "serve", "--listen", "127.0.0.1:3001"], env=self.env,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert "listening on" in self.server.stdout.readline()

    def stop_server(self):
        if self.server:
            self.server.send_signal(signal.SIGTERM)
            self.server.wait(timeout=10)
            self.server = None

    def make_files(self):
        pcap = self.dir / "session.pcap"
        dump = Tcpdump(3001, pcap)
        try:
            chat_through(3001)
        finally:
            dump.stop()
        (self.dir / "session.har").write_text(HAR)
        (self.dir / "my_client.py").write_text(MY_CLIENT_PY)
        (self.dir / "my_client.js").write_text(MY_CLIENT_JS)

    def stop(self):
        if self.kept:
            self.kept[0].kill()
        self.stop_server()


def chat_through(port):
    """The seed guide's client: a token in `auth`, a chat message, the server's reply."""
    client = socketio.Client(reconnection=False)
    replies = []
    client.on("chat response", replies.append)
    client.connect(f"http://127.0.0.1:{port}", auth={"token": token(1, name="ada")}, wait_timeout=5)
    try:
        client.emit("message", {"message": "hello from the README", "sender": "ada"})
        wait_until(lambda: replies, timeout=5)
    finally:
        client.disconnect()
    time.sleep(0.3)  # the close reaches the capture
    return replies[0] if replies else None
