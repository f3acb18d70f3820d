"""Runs one scenario with a python-socketio 4.x client (Socket.IO v4, Engine.IO 3) and prints
what it saw as JSON. Usage: scenario.py NAME URL TRANSPORTS [TOKEN]

Protocol v4 has no CONNECT payload for "/": the token travels in the query.
"""
import json
import os
import sys
import threading
import time

import socketio

name, url, transports = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
token = sys.argv[4] if len(sys.argv) > 4 else None
events = []
lock = threading.Lock()


def plain(value):
    """Bytes as hex, at any depth, so the result prints as JSON."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def record(label):
    def handler(*args):
        with lock:
            events.append([label, plain(list(args))])
    return handler


def wait_for(label, count=1, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with lock:
            if sum(1 for event in events if event[0] == label) >= count:
                return
        time.sleep(0.01)


def client(custom):
    sio = socketio.Client(reconnection=False)
    for event in ["auth", "message-back", "chat response", "message", "roomJoined", "notification", "user disconnected",
                  "user connection", "connect_error", "error"]:
        sio.on(event, record(event))
    if custom:
        # A 4.x client connects every namespace it has handlers for: only the conformance runs want /custom.
        for event in ["auth", "message-back"]:
            sio.on(event, record("/custom " + event), namespace="/custom")
    return sio


result = {"events": events}
sio = client(custom=name == "conformance")
try:
    query = f"?token={token}" if token else ""
    if name == "chat":
        sio.connect(url + query, transports=transports)
        result["transport"] = sio.transport()
        sio.emit("message", {"message": "hi", "sender": "py4"})
        wait_for("chat response")
        sio.emit("joinRoom", "public-4")
        wait_for("roomJoined")
        sio.emit("notify", {"to": 4, "message": "self"})
        wait_for("notification")
        sio.emit("user disconnected", 4)
        wait_for("user disconnected")
    elif name == "refused":
        try:
            sio.connect(url + query, transports=transports)
            time.sleep(1)
        except socketio.exceptions.ConnectionError as error:
            result["error"] = str(error)
        wait_for("connect_error", timeout=2)
    elif name == "conformance":
        sio.connect(url + "?token=xyz", transports=transports, namespaces=["/", "/custom"])
        result["transport"] = sio.transport()
        wait_for("auth")
        time.sleep(0.3)  # v4 joins /custom without a reply the client waits for
        sio.emit("message", (b"\x01\x02", {"k": b"\x03"}, 12345678901234567890))
        wait_for("message-back")
        result["ack"] = plain(sio.call("message-with-ack", ("x", b"\xff\x00"), timeout=5))
        sio.emit("message", "custom!", namespace="/custom")
        wait_for("/custom message-back")
        for index in range(100):
            sio.emit("message", index)
        wait_for("message-back", 101, timeout=10)
    elif name == "large":
        sio.connect(url, transports=transports)
        text = "z" * 1_000_000
        blob = bytes(range(256)) * 4096
        result["text_ok"] = sio.call("message-with-ack", text, timeout=20) == text
        result["blob_ok"] = sio.call("message-with-ack", blob, timeout=20) == blob
except Exception as error:  # reported in the result, so the test shows it
    result["exception"] = repr(error)
finally:
    try:
        print(json.dumps(result, default=repr), flush=True)
        sio.eio.disconnect(abort=True)
    finally:
        # The 4.x client's threads are not daemons: leave without waiting for them.
        os._exit(0)
