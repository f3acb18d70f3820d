"""Bad input and vanishing peers against the built-in server: each gets the documented answer,
the server stays up, other sessions carry on, and its file descriptors come back to where they
were (nothing leaks)."""
import os
import queue
import socket
import threading
import time

import pytest
import requests
import websocket

from conftest import Server, wait_until
from test_engineio_protocol import handshake, url, ws_url

PATH = "/socket.io/"


@pytest.fixture
def server():
    server = Server("--app", "conformance", "--ping-interval", "300", "--ping-timeout", "200", "--max-payload", "100000")
    yield server
    server.stop()


def warm_up(server):
    """One of each kind of exchange, so that descriptors the server opens once (lazily) are in
    the baseline and only a real leak shows."""
    ws = websocket.create_connection(ws_url(server, "EIO=4&transport=websocket", PATH), timeout=3)
    ws.recv()
    ws.close()
    handshake(server, path=PATH)
    time.sleep(0.2)


def open_fds(server):
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


def settle(server, baseline):
    assert wait_until(lambda: open_fds(server) <= baseline, timeout=5), f"{open_fds(server)} fds open, {baseline} before"


class HealthyClient:
    """A WebSocket client that keeps its session alive (answers every ping) in the background."""

    def __init__(self, server):
        self.socket = websocket.create_connection(ws_url(server, "EIO=4&transport=websocket", PATH), timeout=10)
        self.socket.recv()
        self.frames = queue.Queue()
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        try:
            while True:
                frame = self.socket.recv()
                if frame == "2":
                    self.socket.send("3")
                else:
                    self.frames.put(frame)
        except Exception as error:  # the session ended: the test will see it as a missing frame
            self.frames.put(error)

    def next(self):
        return self.frames.get(timeout=5)


def test_vanishing_and_misbehaving_clients(server):
    # A healthy session that must carry on through everything below.
    healthy = HealthyClient(server)
    healthy.socket.send("40")
    assert healthy.next().startswith("40")
    assert healthy.next() == '42["auth",{}]'
    warm_up(server)
    baseline = open_fds(server)

    for _ in range(20):
        # A WebSocket client that vanishes without a close frame.
        raw = websocket.create_connection(ws_url(server, "EIO=4&transport=websocket", PATH), timeout=3)
        raw.recv()
        raw.sock.shutdown(socket.SHUT_RDWR)
        raw.sock.close()

        # A long-poll GET whose client goes away mid-request.
        sid = handshake(server, path=PATH)
        with socket.create_connection((server.host, int(server.port))) as held:
            held.sendall(f"GET {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            time.sleep(0.01)

        # A client that sends half a request and hangs up.
        with socket.create_connection((server.host, int(server.port))) as half:
            half.sendall(b"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nContent-Length: 100\r\n\r\n4he")

        # Garbage instead of HTTP.
        with socket.create_connection((server.host, int(server.port))) as garbage:
            garbage.sendall(b"\x00\xff not http at all\r\n\r\n")
            garbage.settimeout(2)
            try:
                garbage.recv(100)
            except (ConnectionResetError, socket.timeout):
                pass

    # The healthy session still answers (its pings, and an event).
    healthy.socket.send('42["message","still here"]')
    assert healthy.next() == '42["message-back","still here"]'
    settle(server, baseline)
    healthy.socket.close()


def test_oversized_messages(server):
    warm_up(server)
    baseline = open_fds(server)
    sid = handshake(server, path=PATH)
    try:
        response = requests.post(url(server, f"EIO=4&transport=polling&sid={sid}", PATH), data=b"4" + b"x" * 200_000)
        assert response.status_code == 413
    except requests.ConnectionError:
        pass  # the server may answer 413 and close before the client has sent it all
    big = websocket.create_connection(ws_url(server, "EIO=4&transport=websocket", PATH), timeout=3)
    big.recv()
    big.send("4" + "x" * 200_000)
    closed_with = None
    try:
        while True:
            opcode, data = big.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                closed_with = int.from_bytes(data[:2], "big")
                break
    except (websocket.WebSocketConnectionClosedException, ConnectionResetError):
        closed_with = "closed"
    assert closed_with in (1009, "closed")
    # Still serving.
    assert requests.get(url(server, "EIO=4&transport=polling", PATH)).status_code == 200
    settle(server, baseline)


def test_many_sessions_come_and_go():
    server = Server("--app", "conformance", "--ping-interval", "20000", "--ping-timeout", "20000")
    warm_up(server)
    baseline = open_fds(server)
    sockets = []
    for _ in range(100):
        ws = websocket.create_connection(ws_url(server, "EIO=4&transport=websocket", PATH), timeout=3)
        ws.recv()
        ws.send("40")
        sockets.append(ws)
    for ws in sockets:
        assert ws.recv().startswith("40")
    assert open_fds(server) >= baseline + 100
    for ws in sockets:
        ws.close()
    settle(server, baseline)
    server.stop()


def test_client_that_stops_reading(server):
    warm_up(server)
    baseline = open_fds(server)
    reader = HealthyClient(server)
    reader.socket.send("40")
    assert reader.next().startswith("40")
    # A client that sends a lot and never reads the echoes, then vanishes.
    mute = websocket.create_connection(ws_url(server, "EIO=4&transport=websocket", PATH), timeout=3)
    mute.recv()
    mute.send("40")
    payload = '42["message","' + "y" * 50_000 + '"]'
    try:
        for _ in range(200):
            mute.send(payload)
    except (ConnectionResetError, BrokenPipeError, websocket.WebSocketConnectionClosedException):
        pass  # it never answers pings either: the server may drop it before it is done
    # Others are still served meanwhile.
    assert reader.next() == '42["auth",{}]'
    reader.socket.send('42["message","ok"]')
    assert reader.next() == '42["message-back","ok"]'
    try:
        mute.sock.shutdown(socket.SHUT_RDWR)
        mute.sock.close()
    except OSError:
        pass
    reader.socket.close()
    settle(server, baseline)


def test_cors_and_cookie():
    server = Server("--app", "conformance", "--cors", "https://app.example", "--cookie")
    try:
        response = requests.get(url(server, "EIO=4&transport=polling", PATH), headers={"Origin": "https://app.example"})
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        assert response.headers["access-control-allow-credentials"] == "true"
        sid = response.text.split('"sid":"')[1].split('"')[0]
        assert response.headers["set-cookie"].startswith(f"io={sid};")
        other = requests.get(url(server, "EIO=4&transport=polling", PATH), headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        preflight = requests.options(url(server, "EIO=4&transport=polling", PATH),
                                     headers={"Origin": "https://app.example", "Access-Control-Request-Headers": "content-type"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-methods"] == "GET,POST,OPTIONS"
        assert preflight.headers["access-control-allow-headers"] == "content-type"
    finally:
        server.stop()
    plain = Server("--app", "conformance")
    try:
        response = requests.get(url(plain, "EIO=4&transport=polling", PATH), headers={"Origin": "https://app.example"})
        assert "access-control-allow-origin" not in response.headers
        assert "set-cookie" not in response.headers
    finally:
        plain.stop()
