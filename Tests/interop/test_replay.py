"""The regression loop end to end: chat traffic captured from the Python chat server through the
proxy, replayed against the built-in Swift chat server: no differences. The same capture with one
recorded reply changed: exit 1, and the report names that packet and path."""
import json
import subprocess

import pytest

from conftest import SECRET, SIOTAP, Proxy
from test_chat_interop import Peer, run, token
from test_proxy import python_chat, wait_for_records  # noqa: F401 (fixture)


def chat_story_through(proxy):
    async def story():
        alice, bob = Peer(), Peer()
        await alice.connect(proxy, ["websocket"], auth={"token": token(1, name="alice", rooms=["vip"])})
        await bob.connect(proxy, ["websocket"], auth={"token": token(2, name="bob")})
        try:
            await alice.client.emit("user connection", 1)
            await bob.wait_for("user connection")
            await alice.client.emit("message", {"message": "hi", "sender": "alice"})
            await alice.wait_for("chat response")
            await bob.wait_for("message")
            await alice.client.emit("joinRoom", "vip")
            await alice.wait_for("roomJoined")
            await bob.client.emit("notify", {"to": 1, "message": "ping"})
            await alice.wait_for("notification")
        finally:
            await alice.close()
            await bob.close()

    run(story())


def replay(capture, *args):
    return subprocess.run([SIOTAP, "replay", str(capture), "--jwt-secret", SECRET, "--json", *args, *([] if "--target" in args else ["--app", "chat"])],
                          capture_output=True, text=True, timeout=60)


def test_python_capture_replays_against_the_swift_server(python_chat, tmp_path):  # noqa: F811
    proxy = Proxy(python_chat.url, tmp_path, "--jwt-secret", SECRET)
    try:
        chat_story_through(proxy)
        wait_for_records(proxy, lambda rs: sum(r["kind"] == "close" for r in rs) >= 2)
    finally:
        proxy.stop()
    same = replay(proxy.capture)
    report = json.loads(same.stdout)
    assert same.returncode == 0, same.stdout
    assert report["equal"] is True
    assert sum(c["matched"] for c in report["connections"]) == 7  # 2 CONNECT replies and 5 events

    lines = proxy.capture.read_text().splitlines()
    changed = tmp_path / "changed.jsonl"
    changed.write_text("\n".join(line.replace('"You sent: hi"', '"You sent: bye"') for line in lines) + "\n")
    differs = replay(changed)
    assert differs.returncode == 1
    changes = [change for conn in json.loads(differs.stdout)["connections"] for change in conn["changed"]]
    assert [(c["key"], c["path"], c["expected"], c["actual"]) for c in changes] == [
        ("EVENT / chat response", "args[0]", "You sent: bye", "You sent: hi")
    ]


@pytest.mark.parametrize("fixture", ["chat-websocket", "chat-polling", "chat-upgrade", "chat-refused-tokens", "conformance-binary", "chat-eio3"])
def test_every_fixture_replays_against_python_socketio(fixture):
    """The fixtures (made from python-socketio) replay with no difference against python-socketio
    itself, 5.x or, for Engine.IO 3, 4.x: the upgrade ones with siotap's client pausing its polling
    before the upgrade packet, as engine.io-client does (#32); against the built-in server they
    replay in FixtureTests.swift."""
    from conftest import ROOT, python_server
    app = "conformance" if fixture.startswith("conformance") else "chat"
    server = python_server(app, generation=4 if fixture.endswith("eio3") else 5)
    try:
        result = replay(ROOT / "fixtures" / f"{fixture}.jsonl", "--target", server.url)
        report = json.loads(result.stdout)
        assert result.returncode == 0 and report["equal"] is True, json.dumps(report, indent=1)
        assert sum(c["matched"] for c in report["connections"]) > 0
    finally:
        server.stop()
