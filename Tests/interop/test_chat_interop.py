"""python-socketio 5.x clients (Socket.IO v5, Engine.IO 4) against the built-in server, over
websocket, polling, and polling then upgrade."""
import asyncio
import time

import jwt
import pytest
import socketio

from conftest import SECRET, Server

TRANSPORTS = [["websocket"], ["polling"], ["polling", "websocket"]]


def token(user_id, secret=SECRET, lifetime=3600, **claims):
    now = int(time.time())
    return jwt.encode({"id": user_id, "iat": now, "exp": now + lifetime, **claims}, secret, algorithm="HS256")


class Peer:
    """A client that records every event it receives, in order."""

    def __init__(self, custom=False):
        self.client = socketio.AsyncClient(reconnection=False)
        self.events = []
        self.errors = []

        @self.client.on("*")
        async def any_event(event, *args):
            self.events.append((event, list(args)))

        if custom:
            @self.client.on("*", namespace="/custom")
            async def any_custom(event, *args):
                self.events.append(("/custom " + event, list(args)))

        @self.client.event
        async def connect_error(data):
            self.errors.append(data)

    async def connect(self, server, transports, auth=None, namespaces=None):
        await self.client.connect(server.url, auth=auth, transports=transports, namespaces=namespaces, wait_timeout=5)
        # The client falls back to polling silently when an upgrade fails: make sure it did not.
        assert self.client.transport() == transports[-1]

    async def wait_for(self, event, count=1, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matching = [args for name, args in self.events if name == event]
            if len(matching) >= count:
                return matching
            await asyncio.sleep(0.01)
        raise AssertionError(f"no {event!r} (got {self.events})")

    async def close(self):
        # A long-polling client's disconnect waits for its pending poll, which python-engineio's
        # server answers at its next ping (every 2 s in these tests): measured 2.0 to 3.0 s, the
        # first of ten closed in a row past 3 s, with or without the proxy. Aborted, a client may
        # never send its close packet; its session then dies by ping timeout, which the capture
        # rightly diagnoses (a CI run failed so): the limit is well past the ping interval.
        try:
            await asyncio.wait_for(self.client.disconnect(), 10)
        except asyncio.TimeoutError:
            await self.client.eio.disconnect(abort=True)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 30))


@pytest.mark.parametrize("transports", TRANSPORTS, ids=["websocket", "polling", "upgrade"])
def test_chat_story(chat, transports):
    async def story():
        alice, bob = Peer(), Peer()
        await alice.connect(chat, transports, auth={"token": token(1, name="alice", rooms=["vip"])})
        await bob.connect(chat, transports, auth={"token": token(2, name="bob")})
        try:
            await alice.client.emit("user connection", 1)
            assert await bob.wait_for("user connection") == [[1]]

            await alice.client.emit("message", {"message": "hi", "sender": "alice"})
            assert await alice.wait_for("chat response") == [["You sent: hi"]]
            assert await bob.wait_for("message") == [[{"message": "hi", "sender": "alice"}]]

            await alice.client.emit("joinRoom", "secret")
            await alice.client.emit("joinRoom", "vip")
            await alice.client.emit("joinRoom", "public-lobby")
            assert await alice.wait_for("roomJoined", 2) == [["vip"], ["public-lobby"]]

            await bob.client.emit("notify", {"to": 1, "message": "ping"})
            assert await alice.wait_for("notification") == [[{"message": "ping"}]]

            await bob.client.emit("user disconnected", "bob")
            assert await alice.wait_for("user disconnected") == [["bob"]]
            assert await bob.wait_for("user disconnected") == [["bob"]]
            # What must not have happened: alice's own broadcast back to her, a secret room, a
            # chat message echoed to its sender.
            await asyncio.sleep(0.2)
            assert [name for name, _ in alice.events].count("user connection") == 0
            assert [name for name, _ in alice.events].count("message") == 0
            assert [args for name, args in alice.events if name == "roomJoined"] == [["vip"], ["public-lobby"]]
        finally:
            await alice.close()
            await bob.close()

    run(story())


@pytest.mark.parametrize("transports", TRANSPORTS, ids=["websocket", "polling", "upgrade"])
@pytest.mark.parametrize(
    "auth,message",
    [
        (None, "Authentication error: No token provided"),
        ({"token": token(1, secret="not-the-secret")}, "Authentication error: Invalid token"),
        ({"token": token(1, lifetime=-10)}, "Authentication error: Invalid token"),
        ({"token": "garbage"}, "Authentication error: Invalid token"),
    ],
    ids=["none", "bad-signature", "expired", "malformed"],
)
def test_refused_tokens(chat, transports, auth, message):
    async def refused():
        peer = Peer()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await peer.connect(chat, transports, auth=auth)
        assert peer.errors == [{"message": message}]
        await peer.client.eio.disconnect(abort=True)

    run(refused())


@pytest.mark.parametrize("transports", TRANSPORTS, ids=["websocket", "polling", "upgrade"])
def test_conformance_binary_acks_namespaces(conformance, transports):
    async def scenario():
        peer = Peer(custom=True)
        await peer.connect(conformance, transports, auth={"token": "abc"}, namespaces=["/", "/custom"])
        try:
            assert await peer.wait_for("auth") == [[{"token": "abc"}]]
            assert await peer.wait_for("/custom auth") == [[{"token": "abc"}]]
            await peer.client.emit("message", (b"\x01\x02\x03", {"nested": [b"\x04"]}, "text"))
            assert await peer.wait_for("message-back") == [[b"\x01\x02\x03", {"nested": [b"\x04"]}, "text"]]
            reply = await peer.client.call("message-with-ack", (b"\xff" * 10, 12345678901234567890), timeout=5)
            assert reply == (b"\xff" * 10, 12345678901234567890)
            assert await peer.client.call("message-with-ack", 1, namespace="/custom", timeout=5) == 1
            await peer.client.emit("message", "on custom", namespace="/custom")
            assert await peer.wait_for("/custom message-back") == [["on custom"]]
        finally:
            await peer.close()

    run(scenario())


@pytest.mark.parametrize("transports", TRANSPORTS, ids=["websocket", "polling", "upgrade"])
def test_hundred_events_in_order(conformance, transports):
    async def scenario():
        peer = Peer()
        await peer.connect(conformance, transports)
        try:
            for index in range(100):
                await peer.client.emit("message", index)
            received = await peer.wait_for("message-back", 100, timeout=15)
            assert received == [[index] for index in range(100)]
        finally:
            await peer.close()

    run(scenario())


@pytest.fixture(scope="module")
def large():
    server = Server("--app", "conformance", "--max-payload", "3000000")
    yield server
    server.stop()


@pytest.mark.parametrize("transports", TRANSPORTS, ids=["websocket", "polling", "upgrade"])
def test_large_payloads(large, transports):
    async def scenario():
        peer = Peer()
        await peer.connect(large, transports)
        try:
            text = "x" * 1_000_000
            blob = bytes(range(256)) * 4096  # 1 MiB
            await peer.client.emit("message", text)
            assert await peer.wait_for("message-back", timeout=15) == [[text]]
            assert await peer.client.call("message-with-ack", blob, timeout=15) == blob
        finally:
            await peer.close()

    run(scenario())
