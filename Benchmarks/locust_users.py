"""Locust 2.x users for Benchmarks/load.sh: each a python-socketio client on WebSocket that
connects to the conformance app and asks `message-with-ack` once a second, each ack reported to
Locust as a request (its response time the round trip), as Locust's users write them by hand."""
import os
import time

import socketio
from locust import User, between, events, task  # noqa: F401

TARGET = os.environ["TARGET"]


class SocketIOUser(User):
    wait_time = between(1, 1)

    def on_start(self):
        self.sio = socketio.Client(reconnection=False)
        started = time.perf_counter()
        self.sio.connect(TARGET, transports=["websocket"], auth={"token": "t"}, wait_timeout=10)
        events.request.fire(request_type="socketio", name="connect", response_time=(time.perf_counter() - started) * 1000,
                            response_length=0, exception=None)

    @task
    def ask(self):
        started = time.perf_counter()
        exception = None
        try:
            self.sio.call("message-with-ack", {"n": 1, "text": "load"}, timeout=10)
        except Exception as error:  # noqa: BLE001 - Locust counts any failure
            exception = error
        events.request.fire(request_type="socketio", name="message-with-ack", response_time=(time.perf_counter() - started) * 1000,
                            response_length=0, exception=exception)

    def on_stop(self):
        self.sio.disconnect()
