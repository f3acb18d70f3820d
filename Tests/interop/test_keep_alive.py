"""Polling over kept-alive connections, on both hops (#11 Must 6).

Each hop goes through a TCP forwarder that counts the connections it accepts. The clients are
independent: `requests.Session` (keep-alive as browsers do it) for polling, `http.client` plus
the `websockets` library for an upgrade sent on a connection that already carried polling
requests (aiohttp does that when it reuses a pooled connection; NIO's typed upgrader would not
have upgraded it). Upstreams: the built-in server, and python-socketio under uvicorn.
"""
import http.client
import json
import socket
import threading

import pytest
import requests
from websockets.sync.client import connect as ws_connect

from conftest import Proxy, Server, python_server, wait_until

ROUND_TRIPS = 100


class ConnectionCounter:
    """A loopback TCP forwarder to `port` that counts the connections made through it."""

    def __init__(self, port):
        self.target = int(port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for source, sink, counts in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(source, sink, counts), daemon=True).start()

    def _pipe(self, source, sink, counts):
        """`counts`: the connection is counted once its client sends a byte (the proxy checks its
        upstream at start with a connection it closes at once, which carries none)."""
        try:
            while data := source.recv(65536):
                if counts:
                    self.accepted += 1
                    counts = False
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self):
        self.listener.close()


@pytest.fixture
def upstream(request):
    if request.param == "builtin":
        server = Server("--app", "conformance", "--ping-interval", "20000", "--ping-timeout", "20000")
    else:
        server = python_server("conformance", stack="uvicorn")
    yield server
    server.stop()


def packets(body):
    """Engine.IO v4 polling payload: packets separated by \\x1e."""
    return body.split("\x1e") if body else []


def poll_until(get, wanted, pong=None):
    """GETs until a packet starting with `wanted` comes; returns it. Pings are answered with
    `pong` (the python-socketio server pings every 2 s)."""
    for _ in range(20):
        payload = packets(get())
        if "2" in payload and pong:
            pong()
        found = [packet for packet in payload if packet.startswith(wanted)]
        if found:
            return found[0]
    raise AssertionError(f"no {wanted!r} in 20 polls")


def polling_round_trips(base, path="/socket.io/"):
    """A sequential polling client: handshake, connect, then ROUND_TRIPS echoes."""
    with requests.Session() as session:
        url = f"{base}{path}?EIO=4&transport=polling"
        handshake = session.get(url, timeout=5)
        handshake.raise_for_status()
        sid = json.loads(handshake.text[1:])["sid"]
        url += f"&sid={sid}"
        get = lambda: session.get(url, timeout=5).text
        pong = lambda: session.post(url, data="3", timeout=5)
        assert session.post(url, data="40", timeout=5).text.lower() == "ok"
        poll_until(get, "40", pong)
        for i in range(ROUND_TRIPS):
            assert session.post(url, data=f'42["message",{i}]', timeout=5).text.lower() == "ok"
            assert poll_until(get, "42", pong) == f'42["message-back",{i}]'
        session.post(url, data="1", timeout=5)


# Direct to uvicorn would test uvicorn's keep-alive, not ours.
HOPS = [("builtin", "direct"), ("builtin", "proxy"), ("uvicorn", "proxy")]


@pytest.mark.parametrize("upstream,through", HOPS, indirect=["upstream"])
def test_polling_round_trips_keep_their_connections(upstream, through, tmp_path):
    upstream_hop = ConnectionCounter(upstream.port)
    proxy = Proxy(upstream_hop.url, tmp_path) if through == "proxy" else None
    client_hop = ConnectionCounter(proxy.port if proxy else upstream_hop.port)
    try:
        polling_round_trips(client_hop.url, upstream.path)
        assert client_hop.accepted == 1, f"{client_hop.accepted} connections for {ROUND_TRIPS} sequential round trips"
        if proxy:
            # The first upstream connection may be closed by the server at any time; one more then.
            assert 1 <= upstream_hop.accepted <= 2, f"{upstream_hop.accepted} upstream connections for {ROUND_TRIPS} round trips"
            assert wait_until(lambda: sum(r.get("event") == "message-back" for r in proxy.records()) == ROUND_TRIPS)
    finally:
        if proxy:
            proxy.stop()
        client_hop.close()
        upstream_hop.close()


@pytest.mark.parametrize("upstream,through", HOPS, indirect=["upstream"])
def test_an_upgrade_on_a_kept_alive_connection(upstream, through, tmp_path):
    proxy = Proxy(upstream.url, tmp_path) if through == "proxy" else None
    client_hop = ConnectionCounter(proxy.port if proxy else upstream.port)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", client_hop.port, timeout=5)

        def request(method, target, body=None):
            connection.request(method, target, body=body)
            response = connection.getresponse()
            text = response.read().decode()
            assert response.status == 200, text
            return text

        base = f"{upstream.path}?EIO=4&transport=polling"
        sid = json.loads(request("GET", base)[1:])["sid"]
        target = f"{base}&sid={sid}"
        assert request("POST", target, "40").lower() == "ok"
        poll_until(lambda: request("GET", target), "40", lambda: request("POST", target, "3"))
        # The same socket, now asked to become a WebSocket.
        websocket_target = f"{upstream.path}?EIO=4&transport=websocket&sid={sid}"
        with ws_connect(f"ws://127.0.0.1:{client_hop.port}{websocket_target}", sock=connection.sock, open_timeout=5) as ws:
            ws.send("2probe")
            assert ws.recv(timeout=5) == "3probe"
            ws.send("5")
            ws.send('42["message","after the upgrade"]')
            reply = ws.recv(timeout=5)
            # Pings, noops, and the app's "auth" event when it came after the poll that had the CONNECT.
            while reply.startswith("2") or reply == "6" or reply.startswith('42["auth"'):
                reply = ws.recv(timeout=5)
            assert reply == '42["message-back","after the upgrade"]'
        assert client_hop.accepted == 1
        if proxy:
            assert wait_until(lambda: any(r.get("args") == ["after the upgrade"] and r.get("transport") == "websocket"
                                          for r in proxy.records()))
    finally:
        if proxy:
            proxy.stop()
        client_hop.close()
