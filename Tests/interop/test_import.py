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
    """tcpdump on loopback for one port, writing a pcap (packet-buffered, so a stop loses nothing,
    with a 64 MB kernel buffer: on a busy machine the default 2 MB dropped segments, which the
    import then rightly called gaps)."""

    def __init__(self, port, path, *extra):
        self.path = path
        self.process = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "--immediate-mode", "-B", "65536", "-s", "0", "-w", str(path),
                                         *extra, f"tcp port {port}"], stderr=subprocess.PIPE, text=True)
        line = self.process.stderr.readline()
        if "listening on" not in line:
            self.process.kill()
            raise RuntimeError(f"tcpdump did not start: {line!r}")

    def stop(self):
        time.sleep(0.3)  # the last segments (FINs) reach the capture
        self.process.send_signal(signal.SIGINT)
        _, report = self.process.communicate(timeout=10)
        # "N packets dropped by kernel": a capture with holes is not the session the test ran.
        dropped = [int(line.split()[0]) for line in report.splitlines() if "dropped by kernel" in line]
        assert dropped in ([], [0]), f"tcpdump itself dropped packets: {report!r}"


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


def every_field(records, close_reasons=True):
    """Every record with every field, in order per conn, kind and direction, but for what two
    recorders on two hops see differently by nature: when (seq, ts, an ack's latency, a token's
    time left) and the request's client and headers (the proxy's upstream request is its own).
    Without `close_reasons`, a close's side and reason are left out too: when a client sends its
    close packet and drops its long-poll at once, the proxy reads the close packet first, while on
    the upstream hop the dropped poll can come first."""
    streams = {}
    for r in records:
        dropped = ("seq", "ts", "latency_ms", "expires_in_s") + (() if close_reasons else ("by", "reason"))
        kept = {k: v for k, v in r.items() if k not in dropped}
        if r["kind"] == "session":
            kept = {k: v for k, v in kept.items() if k not in ("remote", "headers")}
        if r["kind"] == "packet":
            kept["has_latency"] = "latency_ms" in r
        streams.setdefault((r.get("conn"), r["kind"], r.get("dir")), []).append(json.dumps(kept, sort_keys=True))
    return streams


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
    # One recorder for both (ConnectionRecorder): the same records, field by field, on every
    # transport (on polling: the answer to the poll still out at the close packet, before the close).
    assert every_field(imported) == every_field(seen)
    sessions = [r for r in imported if r["kind"] == "session"]
    assert len(sessions) == 1 and sessions[0]["upstream"] == f"http://127.0.0.1:{server.port}"
    assert sessions[0]["transport"] == TRANSPORTS[transport][0]
    if transport == "upgrade":
        assert {r["transport"] for r in imported if r["kind"] == "engine"} == {"polling", "websocket"}
    # Nothing failed to decode; python-engineio's 400 to the poll still out at the close packet is
    # on the wire, and in both captures.
    decoding = [r for r in imported if r["kind"] == "error" and r["code"] != "proxy.upstream_status"]
    assert not decoding, decoding
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
    """Half a polling session: each request says its sid, so the conn is found again."""
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


def tcp_payload(frame):
    """(source port, destination port, TCP payload) of a pcap record of an Ethernet/IPv4 frame
    (tcpdump on `lo`)."""
    import struct
    packet = frame[16 + 14:]
    header = (packet[0] & 0x0F) * 4
    total = struct.unpack(">H", packet[2:4])[0]
    tcp = packet[header:total]
    source, destination = struct.unpack(">HH", tcp[:4])
    return source, destination, tcp[(tcp[12] >> 4) * 4:]


def packet_story(records):
    return [(r["dir"], r["type"], r.get("event"), json.dumps(r.get("args"))) for r in records if r["kind"] == "packet"]


@pytest.fixture(scope="module")
def websocket_whole(server, tmp_path_factory):
    return capture_whole(server, tmp_path_factory.mktemp("websocket"), "websocket")


def test_a_websocket_joined_after_its_upgrade(websocket_whole, tmp_path):
    """A capture that begins after the upgrade: each side is read from its first segment of whole
    frames (a capture begun inside a frame is the unit tests'), and the messages are one conn
    whose session record says what the capture could not know."""
    pcap, records = websocket_whole
    header, frames = read_pcap(pcap)
    upgraded = next(index for index, frame in enumerate(frames) if b"HTTP/1.1 101" in tcp_payload(frame)[2])
    # The server's open packet goes too, and the client's CONNECT: nothing says where the
    # session's URL, sid or Engine.IO version were.
    with_data = [index for index in range(upgraded + 1, len(frames)) if tcp_payload(frames[index])[2]]
    rest = with_data[2]
    late = tmp_path / "late.pcap"
    late.write_bytes(header + b"".join(frames[rest:]))
    result, joined = siotap_import(late)
    assert result.returncode == 0, result.stderr
    sessions = [r for r in joined if r["kind"] == "session"]
    assert len(sessions) == 1 and sessions[0]["url"] == "" and sessions[0]["transport"] == "websocket" and sessions[0]["eio"] == 4
    assert sessions[0]["upstream"] == f"http://127.0.0.1:{server_port(records)}"
    notes = [r for r in joined if r["kind"] == "error"]
    assert [r["code"] for r in notes] == ["pcap.no_handshake"], notes
    tail, everything = packet_story(joined), packet_story(records)
    # What it has, it decodes as the whole file does: the session's end, nothing made up.
    assert len(tail) >= 4 and everything[-len(tail):] == tail, (tail, everything)
    assert {r["conn"] for r in joined} == {sessions[0]["conn"]}


def server_port(records):
    return next(r for r in records if r["kind"] == "session")["upstream"].rsplit(":", 1)[1]


def test_a_gap_inside_a_websocket(websocket_whole, tmp_path):
    """A client segment lost in the middle of a WebSocket: a gap, then the messages after it read
    again from the next segment of whole frames."""
    pcap, records = websocket_whole
    header, frames = read_pcap(pcap)
    upgraded = next(index for index, frame in enumerate(frames) if b"HTTP/1.1 101" in tcp_payload(frame)[2])
    port = int(server_port(records))
    from_client = [index for index in range(upgraded + 1, len(frames))
                   if tcp_payload(frames[index])[1] == port and tcp_payload(frames[index])[2]]
    dropped = from_client[1]
    holed = tmp_path / "holed.pcap"
    holed.write_bytes(header + b"".join(frame for index, frame in enumerate(frames) if index != dropped))
    result, imported = siotap_import(holed)
    assert result.returncode == 0, result.stderr
    assert [r["code"] for r in imported if r["kind"] == "error"] == ["pcap.gap", "pcap.gap"], imported
    mine = [p for p in packet_story(imported) if p[0] == "c2s"]
    theirs = [p for p in packet_story(records) if p[0] == "c2s"]
    # One client message is lost with its segment; the ones before and after it are all there.
    assert len(mine) == len(theirs) - 1 and all(p in theirs for p in mine) and mine[-1] == theirs[-1]


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


def test_chromium_over_permessage_deflate(tmp_path):
    """The official client in headless Chromium and uvicorn (whose `websockets` agrees to
    permessage-deflate): the import inflates what the two compressed, and says what the page saw."""
    from test_browser import PageServer, open_in_chromium
    import pathlib

    server = python_server("conformance", stack="uvicorn")
    pcap = tmp_path / "deflate.pcap"
    dump = Tcpdump(server.port, pcap)
    pages = PageServer(pathlib.Path(__file__).parent / "browser" / "forward.html")
    try:
        results = open_in_chromium(f"{pages.url}/forward.html?transports=polling,websocket&server={server.url}", pages)
    finally:
        pages.stop()
        dump.stop()
        server.stop()
    assert results["errors"] == []
    data = pcap.read_bytes()
    assert data.count(b"permessage-deflate") >= 2, "the offer and its acceptance are in the capture"
    result, imported = siotap_import(pcap)
    assert result.returncode == 0, result.stderr
    # Nothing failed to decode; python-engineio's 400 to the poll still out at the close packet is
    # on the wire, and in both captures.
    decoding = [r for r in imported if r["kind"] == "error" and r["code"] != "proxy.upstream_status"]
    assert not decoding, decoding
    events = [(r["dir"], r["transport"], r.get("event"), r.get("args")) for r in imported if r["kind"] == "packet"]
    assert ("c2s", "websocket", "message", ["from chromium", 2.5]) in events
    assert ("s2c", "websocket", "message-back", ["from chromium", 2.5]) in events
    acks = [r for r in imported if r["kind"] == "packet" and r["type"] == "ACK"]
    assert acks and acks[0]["args"] == ["acked", 7] and "latency_ms" in acks[0]
    # The browser's session, out of the pcap, replays against the built-in server's conformance app.
    capture = tmp_path / "from-the-pcap.jsonl"
    assert siotap_import(pcap, "--record", str(capture))[0].returncode == 0
    replay = subprocess.run([SIOTAP, "replay", str(capture), "--app", "conformance"], capture_output=True, text=True, timeout=60)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "no differences" in replay.stdout


def test_a_gzipped_polling_body(server, tmp_path):
    """python-engineio gzips polling answers of 1 KB and more for a client that accepts it (aiohttp
    does): the import reads them inflated."""
    pcap = tmp_path / "gzip.pcap"
    dump = Tcpdump(server.port, pcap)
    big = "x" * 3000

    async def run():
        client = socketio.AsyncClient(reconnection=False)
        seen = []
        client.on("message-back", lambda *args: seen.append(args))
        await client.connect(server.url, transports=["polling"], wait_timeout=5)
        await client.emit("message", big)
        while not seen:
            await asyncio.sleep(0.02)
        await client.disconnect()

    try:
        asyncio.run(asyncio.wait_for(run(), 30))
    finally:
        dump.stop()
    assert b"Content-Encoding: gzip" in pcap.read_bytes() or b"content-encoding: gzip" in pcap.read_bytes()
    result, imported = siotap_import(pcap)
    assert result.returncode == 0, result.stderr
    echoed = [r for r in imported if r["kind"] == "packet" and r.get("event") == "message-back"]
    assert echoed and echoed[0]["args"] == [big]


def test_engine_io_3(tmp_path):
    """python-socketio 4.x on both ends (Engine.IO 3, Socket.IO v4): polling then the upgrade,
    binary, a hundred events in a row."""
    from test_eio3_interop import scenario

    server = python_server("conformance", generation=4)
    pcap = tmp_path / "eio3.pcap"
    dump = Tcpdump(server.port, pcap)
    try:
        result = scenario("conformance", server, "polling,websocket")
    finally:
        dump.stop()
        server.stop()
    assert "exception" not in result, result
    completed, imported = siotap_import(pcap)
    assert completed.returncode == 0, completed.stderr
    # Nothing failed to decode; python-engineio's 400 to the poll still out at the close packet is
    # on the wire, and in both captures.
    decoding = [r for r in imported if r["kind"] == "error" and r["code"] != "proxy.upstream_status"]
    assert not decoding, decoding
    sessions = [r for r in imported if r["kind"] == "session"]
    assert sessions and {r["eio"] for r in sessions} == {3}
    backs = [r["args"] for r in imported if r["kind"] == "packet" and r.get("event") == "message-back" and r["nsp"] == "/"]
    # What the client saw, the import read: the first echo (binary as the client printed it in hex), then 0..99.
    assert len(backs) == 1 + 100 and [args[0] for args in backs[1:]] == list(range(100))
    assert {r["transport"] for r in imported if r["kind"] == "engine"} == {"polling", "websocket"}
    acks = [r for r in imported if r["kind"] == "packet" and r["type"] in ("ACK", "BINARY_ACK")]
    assert acks and "latency_ms" in acks[0]


def to_pcapng(header, frames):
    """The same frames as pcapng (a section header, one interface, enhanced packet blocks)."""
    import struct

    def block(kind, body):
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    link, = struct.unpack("<I", header[20:24])
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", link, 0, 262144))
    for frame in frames:
        seconds, micros, captured, original = struct.unpack("<IIII", frame[:16])
        stamp = seconds * 1_000_000 + micros
        out += block(6, struct.pack("<IIIII", 0, stamp >> 32, stamp & 0xFFFFFFFF, captured, original) + frame[16:])
    return out


def test_pcapng_reads_as_its_pcap(whole, tmp_path):
    pcap, records = whole
    header, frames = read_pcap(pcap)
    pcapng = tmp_path / "whole.pcapng"
    pcapng.write_bytes(to_pcapng(header, frames))
    result, imported = siotap_import(pcapng)
    assert result.returncode == 0, result.stderr
    assert [{k: v for k, v in r.items()} for r in imported] == records


def test_sniff_on_loopback(server, tmp_path):
    """`siotap sniff -i lo` while a session runs, stopped with SIGINT: the session recorded, every
    line whole, the same packets as an import of tcpdump's file of it."""
    capture = tmp_path / "live.jsonl"
    sniff = subprocess.Popen([SIOTAP, "sniff", "-i", "lo", "--port", str(server.port), "--record", str(capture), "--quiet"],
                             stderr=subprocess.PIPE, text=True)
    line = sniff.stderr.readline()
    assert "capturing on lo" in line, line + sniff.stderr.read()
    pcap = tmp_path / "same.pcap"
    dump = Tcpdump(server.port, pcap)
    try:
        story(server.url, TRANSPORTS["upgrade"])
        time.sleep(0.3)
    finally:
        dump.stop()
        sniff.send_signal(signal.SIGINT)
        _, rest = sniff.communicate(timeout=10)
    assert sniff.returncode == 0, rest
    assert "stopped" in rest and "1 conn" in rest
    text = capture.read_text()
    assert text.endswith("\n")
    live = [json.loads(line) for line in text.splitlines()]
    _, imported = siotap_import(pcap)
    assert packets(live) == packets(imported) and packets(live)


def test_sniff_refuses_what_it_cannot_do(tmp_path):
    missing = subprocess.run([SIOTAP, "sniff", "-i", "no-such-interface0"], capture_output=True, text=True, timeout=30)
    assert missing.returncode == 1 and "no-such-interface0" in missing.stderr
    bad = subprocess.run([SIOTAP, "sniff", "-i", "lo", "--filter", "tcp port"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "filter" in bad.stderr


def test_sniff_without_the_right_to_capture():
    """Without root or CAP_NET_RAW, sniff says what it needs and exits 1. CI runs as root, so the
    capture right is dropped for the run: setuid to nobody with no capabilities left."""
    command = [SIOTAP, "sniff", "-i", "lo"]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                   "--inh-caps=-all", "--bounding-set=-all", *command]
    denied = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert denied.returncode == 1, denied.stderr
    lines = denied.stderr.strip().splitlines()
    assert len(lines) == 1 and "lo:" in lines[0] and "CAP_NET_RAW" in lines[0], denied.stderr


def test_without_libpcap(whole, tmp_path):
    """libpcap is loaded by import and sniff when they need it, not linked: the binary starts
    without it, every other command runs, and those two say what to install (exit 1). Its
    absence is made with SIOTAP_LIBPCAP naming a file that is not there."""
    pcap, _ = whole
    needed = subprocess.run(["readelf", "-d", SIOTAP], capture_output=True, text=True, check=True).stdout
    assert "NEEDED" in needed and "libpcap" not in needed
    gone = {**os.environ, "SIOTAP_LIBPCAP": str(tmp_path / "libpcap.so.0.8")}
    for command in (["import", str(pcap)], ["sniff", "-i", "lo"]):
        result = subprocess.run([SIOTAP, *command], capture_output=True, text=True, timeout=30, env=gone)
        assert result.returncode == 1, result.stderr
        assert "libpcap" in result.stderr and "apt install libpcap0.8" in result.stderr and "dnf install libpcap" in result.stderr
    decoded = subprocess.run([SIOTAP, "decode", "--json"], input='42["hi"]\n', capture_output=True, text=True, timeout=30, env=gone)
    assert decoded.returncode == 0 and json.loads(decoded.stdout)["event"] == "hi", decoded.stderr
    # The same file named where it is: read.
    found = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    library = next(line.split(" => ")[1] for line in found.splitlines() if "libpcap.so." in line)
    result = subprocess.run([SIOTAP, "import", str(pcap), "--json"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "SIOTAP_LIBPCAP": library})
    assert result.returncode == 0 and '"kind":"packet"' in result.stdout.replace(" ", ""), result.stderr


def test_a_har_from_chromium(tmp_path):
    """A HAR of a real headless Chromium session (the official client, polling then the upgrade),
    made through the DevTools protocol in the DevTools export shape: the import joins its polling
    entries and its WebSocket into one conn, and says what the page saw."""
    import pathlib

    from cdp_har import record_har
    from test_browser import CHROMIUM, PageServer

    server = python_server("conformance", stack="aiohttp")
    pages = PageServer(pathlib.Path(__file__).parent / "browser" / "forward.html")
    try:
        har = asyncio.run(record_har(CHROMIUM, f"{pages.url}/forward.html?transports=polling,websocket&server={server.url}",
                                     pages.done.is_set))
    finally:
        pages.stop()
        server.stop()
    assert pages.results["errors"] == [], pages.results
    path = tmp_path / "session.har"
    path.write_text(json.dumps(har))
    assert any(entry.get("_webSocketMessages") for entry in har["log"]["entries"])
    result, imported = siotap_import(path)
    assert result.returncode == 0, result.stderr
    # Nothing failed to decode; python-engineio's 400 to the poll still out at the close packet is
    # on the wire, and in both captures.
    decoding = [r for r in imported if r["kind"] == "error" and r["code"] != "proxy.upstream_status"]
    assert not decoding, decoding
    sessions = [r for r in imported if r["kind"] == "session"]
    assert len(sessions) == 1 and sessions[0]["transport"] == "polling" and sessions[0]["upstream"] == f"http://127.0.0.1:{server.port}"
    events = [(r["dir"], r["transport"], r.get("event"), r.get("args")) for r in imported if r["kind"] == "packet"]
    assert ("c2s", "websocket", "message", ["from chromium", 2.5]) in events
    assert ("s2c", "websocket", "message-back", ["from chromium", 2.5]) in events
    assert {r["transport"] for r in imported if r["kind"] == "engine"} == {"polling", "websocket"}
    acks = [r for r in imported if r["kind"] == "packet" and r["type"] == "ACK"]
    assert acks and acks[0]["args"] == ["acked", 7]
    # The same file under another name is still read as HAR: by its content.
    renamed = tmp_path / "session.json"
    renamed.write_text(path.read_text())
    assert siotap_import(renamed)[1] == imported


def test_a_har_recorded_by_playwright(tmp_path):
    """The usual HAR in CI: Playwright's `record_har_path`, which writes WebSocket message times in
    milliseconds where DevTools writes seconds. The same page as above, driven by Playwright in
    Debian's Chromium: every record is dated today, the ack has its latency."""
    import pathlib

    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM, PageServer

    server = python_server("conformance", stack="aiohttp")
    pages = PageServer(pathlib.Path(__file__).parent / "browser" / "forward.html")
    path = tmp_path / "playwright.har"
    started = time.time()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            context = browser.new_context(record_har_path=str(path))
            page = context.new_page()
            page.goto(f"{pages.url}/forward.html?transports=polling,websocket&server={server.url}")
            assert wait_until(pages.done.is_set, timeout=30)
            context.close()  # writes the HAR
            browser.close()
    finally:
        pages.stop()
        server.stop()
    assert pages.results["errors"] == [], pages.results
    har = json.loads(path.read_text())
    messages = [m for e in har["log"]["entries"] for m in e.get("_webSocketMessages", [])]
    assert messages and messages[0]["time"] > 1e11, "Playwright's HAR no longer writes milliseconds: this test proves nothing"
    result, imported = siotap_import(path)
    assert result.returncode == 0, result.stderr
    ended = time.time()
    websocket = [r for r in imported if r.get("transport") == "websocket"]
    assert websocket
    for record in imported:
        stamp = time.mktime(time.strptime(record["ts"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        assert started - 5 <= stamp <= ended + 5, record
    events = [(r["dir"], r["transport"], r.get("event"), r.get("args")) for r in imported if r["kind"] == "packet"]
    assert ("c2s", "websocket", "message", ["from chromium", 2.5]) in events
    # The probe and the upgrade are read too: the socket's messages all belong to the conn.
    assert [r["type"] for r in imported if r["kind"] == "engine" and r["transport"] == "websocket"][:3] == ["ping", "pong", "upgrade"]
    acks = [r for r in imported if r["kind"] == "packet" and r["type"] == "ACK"]
    assert acks and acks[0]["args"] == ["acked", 7] and 0 <= acks[0]["latency_ms"] < 5000, acks
