"""The official engine.io-protocol suite (main = v4, branch v3), re-implemented against
`siotap serve --app conformance` (a bare Engine.IO echo at /engine.io/). Every step asserts."""
import json
import threading
import time

import pytest
import requests
import websocket

PATH = "/engine.io/"


def url(server, query, path=PATH):
    return f"{server.url}{path}?{query}"


def ws_url(server, query, path=PATH):
    return f"ws://{server.host}:{server.port}{path}?{query}"


def handshake(server, eio=4, path=PATH, extra=""):
    response = requests.get(url(server, f"EIO={eio}&transport=polling{extra}", path))
    assert response.status_code == 200
    body = response.text
    if eio == 3:
        length, rest = body.split(":", 1)
        body = rest[: int(length)]
    assert body[0] == "0"
    return json.loads(body[1:])["sid"]


def ws_open(address):
    socket = websocket.create_connection(address, timeout=3)
    return socket


def recv_data(socket):
    """The next data frame that is not a heartbeat ping (pings come every 300 ms here)."""
    while True:
        opcode, data = socket.recv_data()
        if opcode == websocket.ABNF.OPCODE_TEXT and data == b"2":
            socket.send("3")
            continue
        return opcode, data


def recv_text(socket):
    opcode, data = recv_data(socket)
    assert opcode == websocket.ABNF.OPCODE_TEXT
    return data.decode()


def assert_closed(socket, timeout=3, pong=False):
    """Waits for the server to close; `pong` answers heartbeats meanwhile (so only another
    reason can close it)."""
    socket.settimeout(timeout)
    try:
        while True:
            opcode, data = socket.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return
            if opcode == websocket.ABNF.OPCODE_TEXT and data == b"2":
                if pong:
                    socket.send("3")
                continue
    except (websocket.WebSocketConnectionClosedException, ConnectionResetError):
        return
    except websocket.WebSocketTimeoutException:
        raise AssertionError("the server did not close the WebSocket")


class TestHandshakeV4:
    def test_polling_handshake(self, conformance):
        response = requests.get(url(conformance, "EIO=4&transport=polling"))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text[0] == "0"
        value = json.loads(response.text[1:])
        assert sorted(value) == ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]
        assert isinstance(value["sid"], str) and value["sid"]
        assert value["upgrades"] == ["websocket"]
        assert (value["pingInterval"], value["pingTimeout"], value["maxPayload"]) == (300, 200, 1000000)

    @pytest.mark.parametrize("query", ["transport=polling", "EIO=abc&transport=polling"])
    def test_bad_eio(self, conformance, query):
        response = requests.get(url(conformance, query))
        assert response.status_code == 400
        assert response.json() == {"code": 5, "message": "Unsupported protocol version"}

    @pytest.mark.parametrize("query", ["EIO=4", "EIO=4&transport=abc"])
    def test_bad_transport(self, conformance, query):
        response = requests.get(url(conformance, query))
        assert response.status_code == 400
        assert response.json() == {"code": 0, "message": "Transport unknown"}

    @pytest.mark.parametrize("method", ["POST", "PUT"])
    def test_bad_method(self, conformance, method):
        response = requests.request(method, url(conformance, "EIO=4&transport=polling"))
        assert response.status_code == 400
        assert response.json() == {"code": 2, "message": "Bad handshake method"}

    def test_websocket_handshake(self, conformance):
        socket = ws_open(ws_url(conformance, "EIO=4&transport=websocket"))
        first = socket.recv()
        assert first[0] == "0"
        value = json.loads(first[1:])
        assert value["upgrades"] == []
        assert (value["pingInterval"], value["pingTimeout"], value["maxPayload"]) == (300, 200, 1000000)
        socket.close()


class TestMessageV4:
    @pytest.mark.parametrize("body", ["4hello", "4test1\x1e4test2\x1e4test3", "4hello\x1ebAQIDBA=="])
    def test_polling_round_trip(self, conformance, body):
        sid = handshake(conformance)
        post = requests.post(url(conformance, f"EIO=4&transport=polling&sid={sid}"), data=body.encode())
        assert post.status_code == 200
        assert post.text == "ok"
        response = requests.get(url(conformance, f"EIO=4&transport=polling&sid={sid}"))
        assert response.status_code == 200
        assert response.text == body

    def test_polling_bad_payload(self, conformance):
        sid = handshake(conformance)
        try:
            post = requests.post(url(conformance, f"EIO=4&transport=polling&sid={sid}"), data=b"abc")
            assert post.status_code == 400
        except requests.ConnectionError:
            pass  # aborted is what the JS server does
        response = requests.get(url(conformance, f"EIO=4&transport=polling&sid={sid}"))
        assert response.status_code == 400

    def test_polling_two_gets(self, conformance):
        sid = handshake(conformance)
        first = {}

        def held():
            first["response"] = requests.get(url(conformance, f"EIO=4&transport=polling&sid={sid}"))

        thread = threading.Thread(target=held)
        thread.start()
        time.sleep(0.05)
        second = requests.get(url(conformance, f"EIO=4&transport=polling&sid={sid}&t=burst"))
        thread.join(5)
        assert first["response"].status_code == 200
        assert first["response"].text == "1"
        assert second.status_code in (400, 500)
        assert requests.get(url(conformance, f"EIO=4&transport=polling&sid={sid}")).status_code == 400

    def test_websocket_echo(self, conformance):
        socket = ws_open(ws_url(conformance, "EIO=4&transport=websocket"))
        socket.recv()
        socket.send("4hello")
        assert recv_text(socket) == "4hello"
        socket.send_binary(bytes([1, 2, 3, 4]))
        opcode, data = recv_data(socket)
        assert opcode == websocket.ABNF.OPCODE_BINARY
        assert data == bytes([1, 2, 3, 4])
        socket.send("abc")
        assert_closed(socket)


class TestHeartbeatV4:
    def test_polling(self, conformance):
        sid = handshake(conformance)
        for _ in range(3):
            response = requests.get(url(conformance, f"EIO=4&transport=polling&sid={sid}"))
            assert response.text == "2"
            post = requests.post(url(conformance, f"EIO=4&transport=polling&sid={sid}"), data=b"3")
            assert post.status_code == 200

    def test_polling_timeout(self, conformance):
        sid = handshake(conformance)
        time.sleep(0.6)
        assert requests.get(url(conformance, f"EIO=4&transport=polling&sid={sid}")).status_code == 400

    def test_websocket(self, conformance):
        socket = ws_open(ws_url(conformance, "EIO=4&transport=websocket"))
        socket.recv()
        for _ in range(3):
            assert socket.recv() == "2"
            socket.send("3")
        socket.close()

    def test_websocket_timeout(self, conformance):
        socket = ws_open(ws_url(conformance, "EIO=4&transport=websocket"))
        socket.recv()
        assert socket.recv() == "2"
        assert_closed(socket)


class TestCloseV4:
    def test_polling(self, conformance):
        sid = handshake(conformance)
        result = {}

        def held():
            result["response"] = requests.get(url(conformance, f"EIO=4&transport=polling&sid={sid}"))

        thread = threading.Thread(target=held)
        thread.start()
        time.sleep(0.05)
        assert requests.post(url(conformance, f"EIO=4&transport=polling&sid={sid}"), data=b"1").status_code == 200
        thread.join(5)
        assert result["response"].text == "6"
        assert requests.get(url(conformance, f"EIO=4&transport=polling&sid={sid}")).status_code == 400

    def test_websocket(self, conformance):
        socket = ws_open(ws_url(conformance, "EIO=4&transport=websocket"))
        socket.recv()
        socket.send("1")
        assert_closed(socket)


class TestUpgradeV4:
    def test_upgrade(self, conformance):
        sid = handshake(conformance)
        socket = ws_open(ws_url(conformance, f"EIO=4&transport=websocket&sid={sid}"))
        socket.send("2probe")
        assert socket.recv() == "3probe"
        response = requests.get(url(conformance, f"EIO=4&transport=polling&sid={sid}"))
        assert response.text == "6"
        socket.send("5")
        socket.send("4hello")
        assert recv_text(socket) == "4hello"
        socket.close()

    def test_polling_after_upgrade(self, conformance):
        sid = handshake(conformance)
        socket = ws_open(ws_url(conformance, f"EIO=4&transport=websocket&sid={sid}"))
        socket.send("2probe")
        assert socket.recv() == "3probe"
        socket.send("5")
        time.sleep(0.05)
        response = requests.get(url(conformance, f"EIO=4&transport=polling&sid={sid}"))
        assert response.status_code == 400
        assert response.json() == {"code": 3, "message": "Bad request"}
        socket.close()

    def test_second_websocket(self, conformance):
        sid = handshake(conformance)
        first = ws_open(ws_url(conformance, f"EIO=4&transport=websocket&sid={sid}"))
        first.send("2probe")
        assert first.recv() == "3probe"
        first.send("5")
        time.sleep(0.05)
        try:
            second = ws_open(ws_url(conformance, f"EIO=4&transport=websocket&sid={sid}"))
            assert_closed(second)
        except websocket.WebSocketBadStatusException as error:
            assert error.status_code == 400
        first.close()


# Engine.IO 3: the v3 branch of the suite.

XHR2 = bytes([0x00, 0x06, 0xFF, 0x34, 0x68, 0x65, 0x6C, 0x6C, 0x6F, 0x01, 0x05, 0xFF, 0x04, 0x01, 0x02, 0x03, 0x04])


class TestEngineIOv3:
    def test_handshake(self, conformance):
        response = requests.get(url(conformance, "EIO=3&transport=polling"))
        assert response.status_code == 200
        length, rest = response.text.split(":", 1)
        assert int(length) == len(rest)
        value = json.loads(rest[1:])
        assert value["upgrades"] == ["websocket"]
        assert (value["pingInterval"], value["pingTimeout"]) == (300, 200)

    @pytest.mark.parametrize("body", ["6:4hello", "6:4test16:4test26:4test3", "6:4hello10:b4AQIDBA=="])
    def test_polling_round_trip_b64(self, conformance, body):
        sid = handshake(conformance, eio=3, extra="&b64=1")
        assert requests.post(url(conformance, f"EIO=3&transport=polling&b64=1&sid={sid}"), data=body.encode()).text == "ok"
        assert requests.get(url(conformance, f"EIO=3&transport=polling&b64=1&sid={sid}")).text == body

    def test_polling_xhr2(self, conformance):
        sid = handshake(conformance, eio=3)
        assert requests.post(url(conformance, f"EIO=3&transport=polling&sid={sid}"), data=b"6:4hello10:b4AQIDBA==").status_code == 200
        response = requests.get(url(conformance, f"EIO=3&transport=polling&sid={sid}"))
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.content == XHR2

    def test_websocket_echo(self, conformance):
        socket = ws_open(ws_url(conformance, "EIO=3&transport=websocket"))
        assert socket.recv()[0] == "0"
        socket.send("4hello")
        assert recv_text(socket) == "4hello"
        socket.send_binary(bytes([4, 1, 2, 3]))
        opcode, data = recv_data(socket)
        assert (opcode, data) == (websocket.ABNF.OPCODE_BINARY, bytes([4, 1, 2, 3]))
        socket.close()

    def test_heartbeat_polling(self, conformance):
        sid = handshake(conformance, eio=3)
        for _ in range(3):
            assert requests.post(url(conformance, f"EIO=3&transport=polling&sid={sid}"), data=b"1:2").status_code == 200
            assert requests.get(url(conformance, f"EIO=3&transport=polling&sid={sid}")).text == "1:3"

    def test_heartbeat_timeout(self, conformance):
        sid = handshake(conformance, eio=3)
        time.sleep(0.7)
        assert requests.post(url(conformance, f"EIO=3&transport=polling&sid={sid}"), data=b"1:2").status_code == 400

    def test_heartbeat_websocket(self, conformance):
        socket = ws_open(ws_url(conformance, "EIO=3&transport=websocket"))
        socket.recv()
        for _ in range(3):
            socket.send("2")
            assert socket.recv() == "3"
        socket.close()

    def test_close(self, conformance):
        sid = handshake(conformance, eio=3)
        result = {}
        thread = threading.Thread(target=lambda: result.setdefault("r", requests.get(url(conformance, f"EIO=3&transport=polling&sid={sid}"))))
        thread.start()
        time.sleep(0.05)
        assert requests.post(url(conformance, f"EIO=3&transport=polling&sid={sid}"), data=b"1:1").status_code == 200
        thread.join(5)
        assert result["r"].text == "1:6"
        assert requests.get(url(conformance, f"EIO=3&transport=polling&sid={sid}")).status_code == 400

    def test_upgrade(self, conformance):
        sid = handshake(conformance, eio=3)
        socket = ws_open(ws_url(conformance, f"EIO=3&transport=websocket&sid={sid}"))
        socket.send("2probe")
        assert socket.recv() == "3probe"
        assert requests.get(url(conformance, f"EIO=3&transport=polling&sid={sid}")).text == "1:6"
        socket.send("5")
        socket.send("4hello")
        assert recv_text(socket) == "4hello"
        socket.close()

    def test_refused_when_eio3_is_off(self):
        from conftest import Server
        server = Server("--app", "conformance", "--no-eio3")
        try:
            response = requests.get(url(server, "EIO=3&transport=polling"))
            assert response.status_code == 400
            assert response.json()["code"] == 5
        finally:
            server.stop()


class TestEngineIOv3Rest:
    """The rest of the v3 branch: the same structure as v4 with EIO=3."""

    def test_polling_bad_payload(self, conformance):
        sid = handshake(conformance, eio=3)
        try:
            assert requests.post(url(conformance, f"EIO=3&transport=polling&sid={sid}"), data=b"abc").status_code == 400
        except requests.ConnectionError:
            pass
        assert requests.get(url(conformance, f"EIO=3&transport=polling&sid={sid}")).status_code == 400

    def test_websocket_handshake_and_close(self, conformance):
        socket = ws_open(ws_url(conformance, "EIO=3&transport=websocket"))
        value = json.loads(socket.recv()[1:])
        assert value["upgrades"] == []
        socket.send("1")
        assert_closed(socket)

    def test_websocket_bad_packet_closes(self, conformance):
        socket = ws_open(ws_url(conformance, "EIO=3&transport=websocket"))
        socket.recv()
        socket.send("abc")
        assert_closed(socket)

    def test_websocket_heartbeat_timeout(self, conformance):
        socket = ws_open(ws_url(conformance, "EIO=3&transport=websocket"))
        socket.recv()
        started = time.monotonic()
        assert_closed(socket)  # the client never pings: closed after interval + timeout
        assert time.monotonic() - started >= 0.4

    def test_polling_after_upgrade_and_second_websocket(self, conformance):
        sid = handshake(conformance, eio=3)
        first = ws_open(ws_url(conformance, f"EIO=3&transport=websocket&sid={sid}"))
        first.send("2probe")
        assert first.recv() == "3probe"
        first.send("5")
        time.sleep(0.05)
        response = requests.get(url(conformance, f"EIO=3&transport=polling&sid={sid}"))
        assert response.status_code == 400 and response.json()["code"] == 3
        try:
            second = ws_open(ws_url(conformance, f"EIO=3&transport=websocket&sid={sid}"))
            assert_closed(second)
        except websocket.WebSocketBadStatusException as error:
            assert error.status_code == 400
        first.close()
