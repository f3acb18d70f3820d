"""The proxy's WebSocket relay is byte-transparent: frames reach the other side as they were
written (fragments, masking keys, pings and pongs included), the 101 carries the upstream's
subprotocol, and the capture still shows whole messages. The upstream here is a bare socket that
records every byte it gets."""
import base64
import hashlib
import json
import os
import socket
import struct
import threading
import time

from concurrent.futures import ThreadPoolExecutor

from conftest import Proxy, Server, wait_until

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode, payload, fin=True, mask=None):
    head = bytes([(0x80 if fin else 0) | opcode])
    length = len(payload)
    bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([bit | length])
    elif length < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", length)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + payload
    return head + payload


def read_exactly(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, f"closed after {len(data)} of {count} bytes"
        data += chunk
    return data


def read_head(sock, empty_ok=False):
    """A request's head; "" for a connection closed before any byte, when `empty_ok`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk and not data and empty_ok:
            return ""
        assert chunk, data
        data += chunk
    return data.decode()


class BareUpstream:
    """Accepts one WebSocket, answers the upgrade, sends an Engine.IO open packet, and records
    every byte after the upgrade."""

    def __init__(self, delay=0.0):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.delay = delay
        self.received = b""
        self.closed_by_peer = False
        self.ready = threading.Event()
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        head = ""
        while not head:  # the proxy first checks the port with a bare TCP connection
            self.sock, _ = self.listener.accept()
            head = read_head(self.sock, empty_ok=True)
        headers = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in head.split("\r\n")[1:] if ":" in line}
        self.request_headers = headers
        accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + GUID).encode()).digest()).decode()
        time.sleep(self.delay)
        self.sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: chat-v1\r\n\r\n").encode())
        self.sock.sendall(frame(1, b'0{"sid":"bare","upgrades":[],"pingInterval":25000,"pingTimeout":20000}'))
        self.ready.set()
        self.sock.settimeout(10)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.closed_by_peer = True
                    break
                self.received += chunk
        except OSError:
            pass
        self.ended.set()

    def close(self):
        try:
            self.sock.close()
        except AttributeError:
            pass
        self.listener.close()


def ask_upgrade(proxy, extra_headers=""):
    """A raw client socket that has sent a WebSocket upgrade request to the proxy."""
    client = socket.create_connection((proxy.host, int(proxy.port)), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    client.sendall((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {proxy.host}:{proxy.port}\r\n"
                    f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    f"Sec-WebSocket-Version: 13\r\n{extra_headers}\r\n").encode())
    return client


def test_frames_go_through_byte_for_byte(tmp_path):
    upstream = BareUpstream()
    proxy = Proxy(f"http://127.0.0.1:{upstream.port}", tmp_path)
    try:
        client = ask_upgrade(proxy, "Sec-WebSocket-Protocol: chat-v1, chat-v0\r\n")
        response = read_head(client)
        assert response.startswith("HTTP/1.1 101"), response
        assert "sec-websocket-protocol: chat-v1" in response.lower()
        assert upstream.ready.wait(5)
        assert "chat-v1" in upstream.request_headers.get("sec-websocket-protocol", "")
        opening = frame(1, b'0{"sid":"bare","upgrades":[],"pingInterval":25000,"pingTimeout":20000}')
        assert read_exactly(client, len(opening)) == opening

        # A fragmented event, a ping between its fragments, and a binary frame, each with its own
        # key; then a short event whose length is written in the 16-bit form (legal, not minimal:
        # re-encoding it would change its bytes).
        long_form = bytes([0x81, 0x80 | 126, 0, 7]) + b"\x01\x01\x01\x01" + bytes(b ^ 1 for b in b'42["x"]')
        sent = (frame(1, b'42["hel', fin=False, mask=b"\x01\x02\x03\x04")
                + frame(9, b"are you there", mask=b"\x0a\x0b\x0c\x0d")
                + frame(0, b'lo",1.50]', mask=b"\xf0\x0f\xaa\x55")
                + frame(2, bytes(range(200)), mask=b"\x11\x22\x33\x44")
                + long_form)
        client.sendall(sent)
        assert wait_until(lambda: len(upstream.received) >= len(sent), timeout=5)
        assert upstream.received == sent

        # The upstream's pong and a fragmented event come back as written.
        back = frame(10, b"are you there") + frame(1, b'42["wor', fin=False) + frame(0, b'ld",1e2]')
        upstream.sock.sendall(back)
        assert read_exactly(client, len(back)) == back

        # The capture has the messages whole, numbers as written.
        records = lambda: proxy.records()
        assert wait_until(lambda: len([r for r in records() if r["kind"] == "packet"]) >= 3, timeout=5)
        packets = [r for r in records() if r["kind"] == "packet"]
        assert [(p["dir"], p["raw"]) for p in packets] == [("c2s", '2["hello",1.50]'), ("c2s", '2["x"]'), ("s2c", '2["world",1e2]')]
        assert packets[0]["args"] == [1.50] and '1.50' in proxy.capture.read_text()

        # The client's close frame goes through, and the conn is closed by the client.
        close = frame(8, struct.pack("!H", 1000), mask=b"\x05\x06\x07\x08")
        client.sendall(close)
        assert wait_until(lambda: upstream.received.endswith(close), timeout=5)
        upstream.sock.sendall(frame(8, struct.pack("!H", 1000)))
        upstream.sock.shutdown(socket.SHUT_RDWR)  # close() alone does not end a socket another thread reads
        assert wait_until(lambda: any(r["kind"] == "close" for r in records()), timeout=5)
        assert [(r["by"], r["reason"]) for r in records() if r["kind"] == "close"] == [("client", "client closed the websocket")]
        client.close()
    finally:
        proxy.stop()
        upstream.close()


def test_an_upgrade_whose_client_leaves_before_the_101_frees_its_upstream(tmp_path):
    """The proxy dials the upstream before it answers the client's upgrade. A client gone by the
    time the upstream has said yes never gets its side attached: the dialled upstream belongs to the
    client's connection and is closed with it, nothing is left open, and the capture has no half
    conn."""
    upstream = BareUpstream(delay=0.5)
    proxy = Proxy(f"http://127.0.0.1:{upstream.port}", tmp_path)
    try:
        assert sockets(proxy) == 1
        client = ask_upgrade(proxy)
        time.sleep(0.1)  # the proxy is dialling; the upstream takes 0.5 s to answer
        client.close()
        assert upstream.ready.wait(5), "the proxy never dialled the upstream"
        assert upstream.ended.wait(5) and upstream.closed_by_peer, "the proxy never closed the dialled upstream"
        assert upstream.received == b"", "the upstream got bytes from a client that was never attached"
        # Only the listening socket is left (other descriptors, timers and the like, open lazily).
        assert wait_until(lambda: sockets(proxy) == 1, timeout=5), f"{sockets(proxy)} sockets open"
        assert proxy.process.poll() is None
        records = proxy.records()
        conns = {r["conn"] for r in records if r.get("conn")}
        assert conns == {r["conn"] for r in records if r["kind"] == "close"}
    finally:
        proxy.stop()
        upstream.close()


def sockets(proxy):
    fd = f"/proc/{proxy.process.pid}/fd"
    return sum(os.readlink(f"{fd}/{name}").startswith("socket:") for name in os.listdir(fd))


def test_frames_that_break_the_rules_still_go_through(tmp_path):
    """The proxy does not judge the framing: a frame with a reserved opcode reaches the upstream
    as it was sent, and so does everything after it; the capture says where decoding stopped."""
    upstream = BareUpstream()
    proxy = Proxy(f"http://127.0.0.1:{upstream.port}", tmp_path)
    try:
        client = ask_upgrade(proxy)
        assert read_head(client).startswith("HTTP/1.1 101")
        assert upstream.ready.wait(5)
        opening = frame(1, b'0{"sid":"bare","upgrades":[],"pingInterval":25000,"pingTimeout":20000}')
        assert read_exactly(client, len(opening)) == opening
        sent = (frame(1, b'42["before"]', mask=b"\x01\x02\x03\x04")
                + frame(3, b"reserved", mask=b"\x05\x06\x07\x08")
                + frame(1, b'42["after"]', mask=b"\x09\x0a\x0b\x0c")
                + bytes(range(256)))
        client.sendall(sent)
        assert wait_until(lambda: len(upstream.received) >= len(sent), timeout=5)
        assert upstream.received == sent
        assert wait_until(lambda: any(r["kind"] == "error" for r in proxy.records()), timeout=5)
        records = proxy.records()
        assert [p["raw"] for p in records if p["kind"] == "packet"] == ['2["before"]']
        error = next(r for r in records if r["kind"] == "error")
        assert (error["dir"], error["code"]) == ("c2s", "websocket.protocol_error")
        assert "reserved opcode 3" in error["message"]
        # The connection is still relayed both ways.
        upstream.sock.sendall(frame(1, b"still here"))
        assert read_exactly(client, len(frame(1, b"still here"))) == frame(1, b"still here")
        client.close()
    finally:
        proxy.stop()
        upstream.close()


def test_upgrades_sharing_a_key_each_get_their_own_upstream(tmp_path):
    """The Sec-WebSocket-Key is the client's to choose: 50 upgrades at once with one key each get
    their own upstream session and conn (nothing is looked up by the key), and the proxy lives on."""
    server = Server("--app", "conformance", "--ping-interval", "25000", "--ping-timeout", "20000")
    proxy = Proxy(server.url, tmp_path)
    count = 50
    barrier = threading.Barrier(count)
    key = base64.b64encode(b"one key for all!").decode()

    def client(index, together=True):
        sock = socket.create_connection((proxy.host, int(proxy.port)), timeout=10)
        if together:
            barrier.wait(timeout=10)
        sock.sendall((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {proxy.host}:{proxy.port}\r\n"
                      f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = read_head(sock)
        assert head.startswith("HTTP/1.1 101"), head
        sid = json.loads(read_message(sock)[1:])["sid"]
        # Each socket talks to its own session: an echo comes back on the socket that sent it.
        sock.sendall(frame(1, b'40', mask=os.urandom(4)))
        assert read_message(sock).startswith("40")
        sock.sendall(frame(1, f'42["message","from {index}"]'.encode(), mask=os.urandom(4)))
        while True:
            message = read_message(sock)
            if message.startswith('42["message-back"'):
                break
        assert message == f'42["message-back","from {index}"]', message
        sock.sendall(frame(8, struct.pack("!H", 1000), mask=os.urandom(4)))
        sock.close()
        return sid

    try:
        with ThreadPoolExecutor(count) as pool:
            sids = list(pool.map(client, range(count)))
        assert len(set(sids)) == count
        assert proxy.process.poll() is None, "the proxy died"
        assert wait_until(lambda: sum(r["kind"] == "close" for r in proxy.records()) == count, timeout=10)
        records = proxy.records()
        sessions = [r for r in records if r["kind"] == "session"]
        assert len({r["conn"] for r in sessions}) == count
        opened = {r["conn"]: r["data"]["sid"] for r in records if r["kind"] == "engine" and r["type"] == "open"}
        assert sorted(opened.values()) == sorted(sids)
        for index in range(count):
            echoed = [r for r in records if r["kind"] == "packet" and r.get("args") == [f"from {index}"]]
            assert len(echoed) == 2 and echoed[0]["conn"] == echoed[1]["conn"], "an echo crossed conns"
        # And it keeps serving.
        assert client(count, together=False) not in sids
    finally:
        proxy.stop()
        server.stop()


def read_message(sock):
    """One whole unmasked text message from a server (no fragments in these tests)."""
    head = read_exactly(sock, 2)
    length = head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", read_exactly(sock, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", read_exactly(sock, 8))[0]
    payload = read_exactly(sock, length)
    if head[0] & 0x0F == 9:  # a ping: not what the test waits for
        return read_message(sock)
    return payload.decode()
