"""Replay keeps each conn's transport history: sessions captured over polling, and over polling
then upgrade, replay over the same, with no difference, against the built-in server; the
capture of the replay itself (through the proxy) shows the same transports."""
import json
import subprocess

import pytest

from conftest import SECRET, SIOTAP, Proxy
from test_chat_interop import Peer, run, token
from test_proxy import wait_for_records


@pytest.mark.parametrize("transports", [["polling"], ["polling", "websocket"], ["websocket"]], ids=["polling", "upgrade", "websocket"])
def test_transport_history_replays(chat, tmp_path, transports):
    (tmp_path / "first").mkdir()
    recording = Proxy(chat.url, tmp_path / "first", "--jwt-secret", SECRET)
    try:
        async def story():
            alice, bob = Peer(), Peer()
            await alice.connect(recording, transports, auth={"token": token(1, rooms=["vip"])})
            await bob.connect(recording, transports, auth={"token": token(2)})
            try:
                await alice.client.emit("message", {"message": "hi", "sender": "alice"})
                await alice.wait_for("chat response")
                await bob.wait_for("message")
                await alice.client.emit("joinRoom", "vip")
                await alice.wait_for("roomJoined")
            finally:
                await alice.close()
                await bob.close()

        run(story())
        wait_for_records(recording, lambda rs: sum(r["kind"] == "close" for r in rs) >= 2)
    finally:
        recording.stop()

    # Replay through a second proxy, to see which transports the replay used.
    (tmp_path / "second").mkdir()
    watching = Proxy(chat.url, tmp_path / "second", "--jwt-secret", SECRET)
    try:
        result = subprocess.run([SIOTAP, "replay", str(recording.capture), "--target", watching.url, "--jwt-secret", SECRET, "--json"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout)["equal"] is True
        replayed = wait_for_records(watching, lambda rs: sum(r["kind"] == "close" for r in rs) >= 2)
    finally:
        watching.stop()

    def transports_used(records):
        per_conn = {}
        for r in records:
            if r["kind"] in ("packet", "engine"):
                per_conn.setdefault(r["conn"], set()).add(r["transport"])
        return sorted(sorted(used) for used in per_conn.values())

    assert transports_used(replayed) == transports_used(recording.records())
