"""The msgpack parser through `siotap proxy`: python-socketio 5.x client and server, both with
serializer="msgpack", over websocket, polling and the upgrade. The capture must show every packet
the clients exchanged, decoded as a JSON session's would be (events, acks, binary, integers
beyond 2^53), and the session record must say msgpack."""
import asyncio
import json
import shutil
import subprocess
import tempfile

import pytest
import socketio

from conftest import SIOTAP, Proxy, Server, python_server, wait_until

BIG = 12345678901234567890
TRANSPORTS = {"websocket": ["websocket"], "polling": ["polling"], "upgrade": ["polling", "websocket"]}


@pytest.fixture(scope="module")
def msgpack_server():
    server = python_server("conformance", serializer="msgpack")
    yield server
    server.stop()


async def quiet_disconnect(client):
    """python-engineio's polling client drops its close packet when it disconnects while a POST is
    still out: its last POST is let finish first (see test_fault_injection.disconnect)."""
    await asyncio.sleep(0.2)
    await client.disconnect()


def settled(proxy):
    def closed():
        records = proxy.records()
        conns = {r["conn"] for r in records if r["kind"] == "session"}
        return conns and conns <= {r["conn"] for r in records if r["kind"] == "close"}
    assert wait_until(closed, timeout=10), proxy.records()
    return proxy.records()


@pytest.fixture(scope="module")
def builtin_msgpack_server():
    server = Server("--app", "conformance", "--parser", "msgpack", "--ping-interval", "2000", "--ping-timeout", "2000")
    yield server
    server.stop()


def replay(capture, *args):
    result = subprocess.run([SIOTAP, "replay", str(capture), "--app", "conformance", "--json", *args],
                            capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("transport", ["websocket", "polling", "upgrade"])
@pytest.mark.parametrize("upstream", ["python-socketio", "siotap serve"])
def test_a_msgpack_session_through_the_proxy(msgpack_server, builtin_msgpack_server, transport, upstream, tmp_path):
    """The same session against python-socketio's server and the built-in one (--parser msgpack):
    what the client saw, the capture, and the capture replayed against the built-in server."""
    server = msgpack_server if upstream == "python-socketio" else builtin_msgpack_server
    with tempfile.TemporaryDirectory() as directory:
        proxy = Proxy(server.url, directory)
        try:
            async def story():
                client = socketio.AsyncClient(reconnection=False, serializer="msgpack")
                backs = asyncio.Queue()
                client.on("message-back", lambda *args: backs.put_nowait(args))
                await client.connect(proxy.url, transports=TRANSPORTS[transport], auth={"token": "t"}, wait_timeout=5)
                if transport == "upgrade":
                    for _ in range(100):
                        if client.transport() == "websocket":
                            break
                        await asyncio.sleep(0.02)
                assert client.transport() == TRANSPORTS[transport][-1]
                await client.emit("message", {"n": BIG, "f": 1.5, "bin": b"\x00\xff", "text": "caf\u00e9"})
                back = await asyncio.wait_for(backs.get(), 5)
                ack = await client.call("message-with-ack", [b"\x01\x02", -7], timeout=5)
                await quiet_disconnect(client)
                return back, ack

            back, ack = asyncio.run(asyncio.wait_for(story(), 30))
            sent = {"n": BIG, "f": 1.5, "bin": b"\x00\xff", "text": "caf\u00e9"}
            assert back[0] == sent if isinstance(back, tuple) else back == sent
            assert ack == [b"\x01\x02", -7]
            records = settled(proxy)
            [session] = [r for r in records if r["kind"] == "session"]
            assert session["parser"] == "msgpack"
            assert records[0]["kind"] == "session", "the session record still comes first"
            # Nothing that failed to decode (python-socketio's polling client may end with a long-poll
            # its server answers 400 once the session is closed: a proxy.upstream_status, not ours).
            errors = [r for r in records if r["kind"] == "error" and not r["code"].startswith("proxy.")]
            assert errors == []
            packets = [r for r in records if r["kind"] == "packet"]
            assert all(p["raw"].startswith("base64:") for p in packets)
            connect = next(p for p in packets if p["type"] == "CONNECT" and p["dir"] == "c2s")
            assert connect["data"] == {"token": "t"}
            [message] = [p for p in packets if p.get("event") == "message"]
            assert message["args"][0]["n"] == BIG and message["args"][0]["f"] == 1.5 and message["args"][0]["text"] == "caf\u00e9"
            assert message["args"][0]["bin"] == {"$binary": "AP8="} and message["attachments"] == ["AP8="]
            [echo] = [p for p in packets if p.get("event") == "message-back"]
            assert echo["args"] == message["args"]
            [call] = [p for p in packets if p.get("event") == "message-with-ack"]
            [answer] = [p for p in packets if p["type"] == "ACK"]
            assert answer["id"] == call["id"] and answer["dir"] == "s2c"
            assert answer["args"] == [[{"$binary": "AQI="}, -7]] and answer["latency_ms"] >= 0
            expected_transports = {"websocket": {"websocket"}, "polling": {"polling"}, "upgrade": {"polling", "websocket"}}[transport]
            assert {p["transport"] for p in packets} <= expected_transports
            # The capture replays against the built-in server, which takes the msgpack parser from it.
            capture = tmp_path / "msgpack.jsonl"
            shutil.copy(proxy.capture, capture)
            code, output = replay(capture)
            assert code == 0, output
            assert json.loads(output.splitlines()[0])["connections"][0]["matched"] >= 4
        finally:
            proxy.stop()


def test_a_json_session_says_no_parser(tmp_path):
    """The default parser is not written: a JSON session's record has no "parser"."""
    server = python_server("conformance")
    proxy = Proxy(server.url, tmp_path)
    try:
        client = socketio.Client(reconnection=False)
        client.connect(proxy.url, transports=["websocket"], wait_timeout=5)
        client.call("message-with-ack", 1, timeout=5)
        client.disconnect()
        records = settled(proxy)
        assert records[0]["kind"] == "session" and "parser" not in records[0]
    finally:
        proxy.stop()
        server.stop()


def test_faults_in_a_msgpack_session(builtin_msgpack_server, tmp_path):
    """A rewrite and a refused CONNECT are re-encoded with the session's parser."""
    proxy = Proxy(builtin_msgpack_server.url, tmp_path, "--fault", "set=args[0].n:1,event=message-back",
                  "--fault", "refuse-connect=1,message=try again")
    try:
        async def story():
            client = socketio.AsyncClient(reconnection=False, serializer="msgpack")
            backs = asyncio.Queue()
            refusals = []
            client.on("message-back", lambda *args: backs.put_nowait(args))
            client.on("connect_error", lambda data: refusals.append(data))
            with pytest.raises(socketio.exceptions.ConnectionError):
                await client.connect(proxy.url, transports=["websocket"], wait_timeout=5)
            assert refusals == [{"message": "try again"}]
            await client.connect(proxy.url, transports=["websocket"], wait_timeout=5)
            await client.emit("message", {"n": BIG, "bin": b"\x01"})
            back = await asyncio.wait_for(backs.get(), 5)
            await quiet_disconnect(client)
            return back

        back = asyncio.run(asyncio.wait_for(story(), 30))
        assert (back[0] if isinstance(back, tuple) else back) == {"n": 1, "bin": b"\x01"}
        records = settled(proxy)
        assert [f["action"] for f in records if f["kind"] == "fault"] == ["refuse-connect", "rewrite"]
    finally:
        proxy.stop()


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_an_imported_msgpack_session(msgpack_server, transport, tmp_path):
    """tcpdump records the proxy's upstream hop of a msgpack session: `siotap import` reads the
    same packets the proxy recorded, and says msgpack in the session record."""
    from test_import import Tcpdump, packets, siotap_import
    pcap = tmp_path / "msgpack.pcap"
    dump = Tcpdump(msgpack_server.port, pcap)
    proxy = Proxy(msgpack_server.url, tmp_path)
    try:
        async def story():
            client = socketio.AsyncClient(reconnection=False, serializer="msgpack")
            await client.connect(proxy.url, transports=TRANSPORTS[transport], wait_timeout=5)
            assert await client.call("message-with-ack", [b"\x01\x02", BIG], timeout=5) == [b"\x01\x02", BIG]
            await quiet_disconnect(client)

        asyncio.run(asyncio.wait_for(story(), 30))
        seen = settled(proxy)
    finally:
        proxy.stop()
        dump.stop()
    result, imported = siotap_import(pcap)
    assert result.returncode == 0, result.stderr
    [session] = [r for r in imported if r["kind"] == "session"]
    assert session["parser"] == "msgpack"
    assert imported[0]["kind"] == "session"
    assert packets(imported) == packets(seen)


def test_a_msgpack_capture_mocked_for_a_msgpack_client(msgpack_server, tmp_path):
    """`siotap mock` plays a msgpack capture in msgpack: the client's call gets the recorded ack."""
    proxy = Proxy(msgpack_server.url, tmp_path)
    try:
        async def record():
            client = socketio.AsyncClient(reconnection=False, serializer="msgpack")
            await client.connect(proxy.url, transports=["websocket"], wait_timeout=5)
            answer = await client.call("message-with-ack", {"n": BIG, "b": b"\x09"}, timeout=5)
            await quiet_disconnect(client)
            return answer

        recorded = asyncio.run(asyncio.wait_for(record(), 30))
        settled(proxy)
        capture = tmp_path / "mock.jsonl"
        shutil.copy(proxy.capture, capture)
    finally:
        proxy.stop()
    mock = subprocess.Popen([SIOTAP, "mock", str(capture), "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = mock.stdout.readline().split(" on ")[1].split("/socket.io/")[0]

        async def replayed():
            client = socketio.AsyncClient(reconnection=False, serializer="msgpack")
            await client.connect(url, transports=["websocket"], wait_timeout=5)
            answer = await client.call("message-with-ack", {"n": BIG, "b": b"\x09"}, timeout=5)
            await quiet_disconnect(client)
            return answer

        assert asyncio.run(asyncio.wait_for(replayed(), 30)) == recorded == {"n": BIG, "b": b"\x09"}
    finally:
        mock.terminate()
        mock.wait(timeout=10)


def test_an_edited_msgpack_capture_is_reported_as_changed(builtin_msgpack_server, tmp_path):
    """A msgpack capture as one from socket.io's server kept it before notepack's `undefined` pid
    was read as such (`"pid": {"$ext": …}` in the CONNECT answer), with a server event's text
    edited: the replay reports the change, exit 1 (it took the pid for recovery, and the edited
    last argument for an offset, and said "no differences")."""
    with tempfile.TemporaryDirectory() as directory:
        proxy = Proxy(builtin_msgpack_server.url, directory)
        try:
            async def story():
                client = socketio.AsyncClient(reconnection=False, serializer="msgpack")
                backs = asyncio.Queue()
                client.on("message-back", lambda *args: backs.put_nowait(args))
                await client.connect(proxy.url, transports=["websocket"], auth={"token": "t"}, wait_timeout=5)
                await client.emit("message", "You sent: hello")
                await asyncio.wait_for(backs.get(), 5)
                await quiet_disconnect(client)

            asyncio.run(asyncio.wait_for(story(), 30))
            records = settled(proxy)
        finally:
            proxy.stop()
    capture = tmp_path / "unedited.jsonl"
    capture.write_text("".join(json.dumps(r) + "\n" for r in records))
    code, output = replay(capture)
    assert code == 0, output
    edited = []
    for record in records:
        if record["kind"] == "packet" and record["type"] == "CONNECT" and record["dir"] == "s2c":
            record["data"]["pid"] = {"$ext": {"type": 0, "data": "AA=="}}
        if record.get("event") == "message-back":
            assert record["args"] == ["You sent: hello"]
            record["args"] = ["You sent: EDITED"]
        edited.append(json.dumps(record))
    capture = tmp_path / "edited.jsonl"
    capture.write_text("\n".join(edited) + "\n")
    code, output = replay(capture)
    assert code == 1, output
    report = json.loads(output.splitlines()[0])
    changed = [change for conn in report["connections"] for change in conn["changed"]]
    assert any("EDITED" in json.dumps(change) for change in changed), report
