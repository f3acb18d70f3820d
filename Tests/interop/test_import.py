"""`siotap import` (#13): sessions out of pcap files. tcpdump (Debian's) records, on loopback,
python-socketio clients talking through `siotap proxy` to python-socketio servers; the import of
the hop between the proxy and the server must give the same packets, acks and tokens as the
proxy's own capture of the same session. Then files no well-behaved capture is: one started
mid-session, one with segments filtered out, a truncated one, and one that is no capture at all."""
import asyncio
import json
import os
import signal
import subprocess
import time

import jwt
import pytest
import socketio

from conftest import SECRET, SIOTAP, Proxy, python_server, wait_until

TRANSPORTS = {"websocket": ["websocket"], "polling": ["polling"], "upgrade": ["polling", "websocket"]}


class Tcpdump:
    """tcpdump on loopback for one port, writing a pcap (packet-buffered, so a stop loses nothing)."""

    def __init__(self, port, path, *extra):
        self.path = path
        self.process = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "--immediate-mode", "-s", "0", "-w", str(path), *extra,
                                         f"tcp port {port}"], stderr=subprocess.PIPE, text=True)
        line = self.process.stderr.readline()
        if "listening on" not in line:
            self.process.kill()
            raise RuntimeError(f"tcpdump did not start: {line!r}")

    def stop(self):
        time.sleep(0.3)  # the last segments (FINs) reach the capture
        self.process.send_signal(signal.SIGINT)
        self.process.wait(10)


def siotap_import(pcap, *args):
    result = subprocess.run([SIOTAP, "import", str(pcap), "--json", *args], capture_output=True, text=True, timeout=120)
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result, records


def packets(records):
    """What a session said, in order per conn and direction (the two hops of the proxy may
    interleave the directions differently), without what differs between recorders."""
    streams = {}
    for r in records:
        if r["kind"] == "packet":
            streams.setdefault((r["conn"], r["dir"]), []).append(
                (r["dir"], r["transport"], r["type"], r["nsp"], r.get("event"), json.dumps(r.get("args")), json.dumps(r.get("data")),
                 r.get("id"), "latency_ms" in r))
    return sorted(streams.values())


def tokens(records):
    return sorted((r["source"], r.get("nsp"), r["verified"], json.dumps(r["claims"], sort_keys=True)) for r in records if r["kind"] == "jwt")


def story(url, transports):
    async def run():
        client = socketio.AsyncClient(reconnection=False)
        seen = []
        client.on("message-back", lambda *args: seen.append(args))
        token = jwt.encode({"id": 7, "exp": 4102444800}, SECRET, algorithm="HS256")
        await client.connect(f"{url}?token={token}", transports=transports, auth={"token": token}, wait_timeout=5)
        await client.emit("message", ("pcap", 1.50, {"b": 1, "a": [True, None]}))
        await client.emit("message", b"\x00\x01binary\xff")
        assert await client.call("message-with-ack", ["ack", 2], timeout=5) == ["ack", 2]
        while len(seen) < 2:
            await asyncio.sleep(0.02)
        await client.disconnect()

    asyncio.run(asyncio.wait_for(run(), 30))


@pytest.fixture(scope="module")
def server():
    server = python_server("conformance", stack="aiohttp")
    yield server
    server.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_import_says_what_the_proxy_saw(server, transport, tmp_path):
    pcap = tmp_path / "hop.pcap"
    dump = Tcpdump(server.port, pcap)
    proxy = Proxy(server.url, tmp_path, "--jwt-secret", SECRET)
    try:
        story(proxy.url, TRANSPORTS[transport])
        assert wait_until(lambda: any(r["kind"] == "close" for r in proxy.records()), timeout=10)
    finally:
        proxy.stop()
        dump.stop()
    result, imported = siotap_import(pcap, "--jwt-secret", SECRET, "--record", str(tmp_path / "imported.jsonl"))
    assert result.returncode == 0, result.stderr
    seen = proxy.records()
    assert packets(imported) == packets(seen)
    assert tokens(imported) == tokens(seen) and tokens(seen)
    sessions = [r for r in imported if r["kind"] == "session"]
    assert len(sessions) == 1 and sessions[0]["upstream"] == f"http://127.0.0.1:{server.port}"
    assert sessions[0]["transport"] == TRANSPORTS[transport][0]
    if transport == "upgrade":
        assert {r["transport"] for r in imported if r["kind"] == "engine"} == {"polling", "websocket"}
    assert not [r for r in imported if r["kind"] == "error"], [r for r in imported if r["kind"] == "error"]
    assert [r["kind"] for r in imported].count("close") == 1
    # Times are the capture's, in order.
    times = [r["ts"] for r in imported]
    assert times == sorted(times) and times[0] < seen[-1]["ts"]
    # What was written is a capture the other commands read: replay needs nothing more.
    assert "1 conn, " in result.stderr and " 0 gaps" in result.stderr


def read_pcap(path):
    """A classic pcap file's header and frames (each with its 16-byte record header)."""
    import struct
    data = path.read_bytes()
    frames, offset = [], 24
    while offset + 16 <= len(data):
        length = struct.unpack("<I", data[offset + 8:offset + 12])[0]
        frames.append(data[offset:offset + 16 + length])
        offset += 16 + length
    return data[:24], frames


def capture_whole(server, directory, transport):
    pcap = directory / f"{transport}.pcap"
    dump = Tcpdump(server.port, pcap)
    try:
        story(server.url, TRANSPORTS[transport])
    finally:
        dump.stop()
    result, records = siotap_import(pcap)
    assert result.returncode == 0, result.stderr
    return pcap, records


@pytest.fixture(scope="module")
def whole(server, tmp_path_factory):
    """One upgraded session, captured whole, and its import."""
    return capture_whole(server, tmp_path_factory.mktemp("whole"), "upgrade")


def test_a_capture_started_mid_session(server, tmp_path):
    """Half a polling session: each request says its sid, so the conn is found again. (A WebSocket
    whose upgrade is not in the capture is not read: its frame boundaries cannot be proven.)"""
    pcap, records = capture_whole(server, tmp_path, "polling")
    header, frames = read_pcap(pcap)
    late = tmp_path / "late.pcap"
    late.write_bytes(header + b"".join(frames[len(frames) // 2:]))
    result, started_late = siotap_import(late)
    assert result.returncode == 0, result.stderr
    tail = [(r["dir"], r["type"], r.get("event"), r.get("args")) for r in started_late if r["kind"] == "packet"]
    everything = [(r["dir"], r["type"], r.get("event"), r.get("args")) for r in records if r["kind"] == "packet"]
    # What it has, it decodes as the whole file does: the end of the session, nothing made up.
    assert tail and everything[-len(tail):] == tail


def test_lost_segments_are_gaps_not_guesses(whole, tmp_path):
    pcap, records = whole
    header, frames = read_pcap(pcap)
    # The largest frame carries data; without it, its stream has a hole the peer's ACK proves.
    largest = max(range(len(frames)), key=lambda index: len(frames[index]))
    holed = tmp_path / "holed.pcap"
    holed.write_bytes(header + b"".join(frame for index, frame in enumerate(frames) if index != largest))
    result, imported = siotap_import(holed)
    assert result.returncode == 0, result.stderr
    gaps = [r for r in imported if r.get("code") == "pcap.gap"]
    assert gaps, imported
    assert "bytes of this stream are not in the capture" in gaps[0]["message"]
    assert len([r for r in imported if r["kind"] == "packet"]) < len([r for r in records if r["kind"] == "packet"])


def test_a_truncated_file_and_a_file_that_is_no_capture(whole, tmp_path):
    pcap, records = whole
    data = pcap.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 7])
    result, imported = siotap_import(cut)
    assert result.returncode == 1
    assert "ends inside a frame" in result.stderr
    assert [r for r in imported if r["kind"] == "packet"], "what came before the cut is imported"
    assert imported[-1]["kind"] == "close" or any(r.get("code") == "pcap.truncated" for r in imported)
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n" * 10)
    result, imported = siotap_import(text)
    assert result.returncode == 2 and imported == []
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    result, _ = siotap_import(pcap, "--filter", "tcp port")
    assert result.returncode == 2 and "filter" in result.stderr
