"""The official socket.io-protocol suite (main = v5), re-implemented against
`siotap serve --app conformance`. Every step asserts; frames are buffered so none is missed."""
import json
import time

import pytest
import requests
import websocket

from test_engineio_protocol import assert_closed, handshake, url, ws_url

PATH = "/socket.io/"


class Frames:
    """A WebSocket that answers pings and hands out the other frames in order."""

    def __init__(self, server, query="EIO=4&transport=websocket"):
        self.socket = websocket.create_connection(ws_url(server, query, PATH), timeout=3)
        self.open = json.loads(self.socket.recv()[1:])

    def next(self):
        while True:
            opcode, data = self.socket.recv_data()
            if opcode == websocket.ABNF.OPCODE_TEXT and data == b"2":
                self.socket.send("3")
                continue
            return data.decode() if opcode == websocket.ABNF.OPCODE_TEXT else bytes(data)

    def send(self, text):
        self.socket.send(text)

    def send_binary(self, data):
        self.socket.send_binary(data)

    def close(self):
        self.socket.close()


class TestEngineLevelAtSocketIOPath:
    """The suite reruns the Engine.IO handshake, heartbeat, close and upgrade tests at /socket.io/."""

    def test_handshake(self, conformance):
        response = requests.get(url(conformance, "EIO=4&transport=polling", PATH))
        value = json.loads(response.text[1:])
        assert value["upgrades"] == ["websocket"]
        assert requests.get(url(conformance, "transport=polling", PATH)).status_code == 400
        assert requests.post(url(conformance, "EIO=4&transport=polling", PATH)).status_code == 400

    def test_heartbeat(self, conformance):
        sid = handshake(conformance, path=PATH)
        for _ in range(3):
            assert requests.get(url(conformance, f"EIO=4&transport=polling&sid={sid}", PATH)).text == "2"
            assert requests.post(url(conformance, f"EIO=4&transport=polling&sid={sid}", PATH), data=b"3").status_code == 200

    def test_close(self, conformance):
        frames = Frames(conformance)
        frames.send("1")
        assert_closed(frames.socket)

    def test_upgrade(self, conformance):
        sid = handshake(conformance, path=PATH)
        socket = websocket.create_connection(ws_url(conformance, f"EIO=4&transport=websocket&sid={sid}", PATH), timeout=3)
        socket.send("2probe")
        assert socket.recv() == "3probe"
        assert requests.get(url(conformance, f"EIO=4&transport=polling&sid={sid}", PATH)).text == "6"
        socket.send("5")
        socket.send("40")
        reply = socket.recv()
        assert reply.startswith("40{")
        socket.close()


class TestConnect:
    def test_main_namespace(self, conformance):
        frames = Frames(conformance)
        frames.send("40")
        reply = frames.next()
        assert reply.startswith("40")
        assert list(json.loads(reply[2:])) == ["sid"]
        assert isinstance(json.loads(reply[2:])["sid"], str)
        assert frames.next() == '42["auth",{}]'
        frames.close()

    def test_main_namespace_with_auth(self, conformance):
        frames = Frames(conformance)
        frames.send('40{"token":"123"}')
        assert frames.next().startswith("40{")
        assert frames.next() == '42["auth",{"token":"123"}]'
        frames.close()

    def test_custom_namespace(self, conformance):
        frames = Frames(conformance)
        frames.send("40/custom,")
        reply = frames.next()
        assert reply.startswith("40/custom,{")
        assert list(json.loads(reply[len("40/custom,"):])) == ["sid"]
        assert frames.next() == '42/custom,["auth",{}]'
        frames.close()

    def test_custom_namespace_with_auth(self, conformance):
        frames = Frames(conformance)
        frames.send('40/custom,{"token":"abc"}')
        assert frames.next().startswith("40/custom,{")
        assert frames.next() == '42/custom,["auth",{"token":"abc"}]'
        frames.close()

    def test_invalid_namespace(self, conformance):
        frames = Frames(conformance)
        frames.send("40/random")
        assert frames.next() == '44/random,{"message":"Invalid namespace"}'
        frames.close()

    def test_invalid_first_packet(self, conformance):
        frames = Frames(conformance)
        frames.send("4abc")
        assert_closed(frames.socket)

    def test_connect_timeout(self, conformance):
        frames = Frames(conformance)
        started = time.monotonic()
        assert_closed(frames.socket, timeout=3, pong=True)
        assert 0.9 <= time.monotonic() - started < 2.5


class TestDisconnect:
    def test_disconnect_keeps_the_engine_session(self, conformance):
        frames = Frames(conformance)
        frames.send("40")
        frames.next()
        frames.next()
        frames.send("41")
        opcode, data = frames.socket.recv_data()
        assert (opcode, data) == (websocket.ABNF.OPCODE_TEXT, b"2")
        frames.socket.send("3")
        frames.close()

    def test_disconnect_one_namespace(self, conformance):
        frames = Frames(conformance)
        frames.send("40")
        frames.next()
        frames.next()
        frames.send("40/custom")
        assert frames.next().startswith("40/custom,")
        assert frames.next() == '42/custom,["auth",{}]'
        frames.send("41/custom")
        frames.send('42["message","message to main namespace"]')
        assert frames.next() == '42["message-back","message to main namespace"]'
        frames.close()


def connected(server):
    frames = Frames(server)
    frames.send("40")
    assert frames.next().startswith("40{")
    assert frames.next() == '42["auth",{}]'
    return frames


class TestMessages:
    def test_echo(self, conformance):
        frames = connected(conformance)
        frames.send('42["message",1,"2",{"3":[true]}]')
        assert frames.next() == '42["message-back",1,"2",{"3":[true]}]'
        frames.close()

    def test_binary_echo(self, conformance):
        frames = connected(conformance)
        frames.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
        frames.send_binary(bytes([1, 2, 3]))
        frames.send_binary(bytes([4, 5, 6]))
        assert frames.next() == '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
        assert frames.next() == bytes([1, 2, 3])
        assert frames.next() == bytes([4, 5, 6])
        frames.close()

    def test_ack(self, conformance):
        frames = connected(conformance)
        frames.send('42456["message-with-ack",1,"2",{"3":[false]}]')
        assert frames.next() == '43456[1,"2",{"3":[false]}]'
        frames.close()

    def test_binary_ack(self, conformance):
        frames = connected(conformance)
        frames.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
        frames.send_binary(bytes([1, 2, 3]))
        frames.send_binary(bytes([4, 5, 6]))
        assert frames.next() == '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
        assert frames.next() == bytes([1, 2, 3])
        assert frames.next() == bytes([4, 5, 6])
        frames.close()

    @pytest.mark.parametrize("packet", ["4abc", "42{}", '42abc["message-with-ack",1]'])
    def test_invalid_packets_close(self, conformance, packet):
        frames = connected(conformance)
        frames.send(packet)
        assert_closed(frames.socket)

    def test_wire_text_survives(self, conformance):
        frames = connected(conformance)
        frames.send('42["message",12345678901234567890,0.10,"\\ud83d\\ude00",{"b":1,"a":2}]')
        assert frames.next() == '42["message-back",12345678901234567890,0.10,"\\ud83d\\ude00",{"b":1,"a":2}]'
        frames.close()
