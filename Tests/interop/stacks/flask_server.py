"""The conformance contract of docs/demo-apps.md on Flask-SocketIO (threading mode, WebSockets by
simple-websocket), served by gunicorn's threaded worker, as Flask apps are deployed:

    gunicorn -w 1 -k gthread --threads 64 -b 127.0.0.1:0 --chdir Tests/interop/stacks flask_server:app
"""
from flask import Flask
from flask_socketio import SocketIO, emit

app = Flask(__name__)
socketio = SocketIO(app, async_mode="threading", cors_allowed_origins="*", ping_interval=2, ping_timeout=2,
                    max_http_buffer_size=3_000_000)


def handlers(namespace):
    @socketio.on("connect", namespace=namespace)
    def connect(auth=None):
        emit("auth", auth if auth is not None else {})

    @socketio.on("message", namespace=namespace)
    def message(*args):
        # Several arguments go as a tuple (Flask-SocketIO's emit takes one data argument).
        emit("message-back", args if len(args) != 1 else args[0])

    @socketio.on("message-with-ack", namespace=namespace)
    def message_with_ack(*args):
        return args if len(args) != 1 else args[0]


for name in ("/", "/custom"):
    handlers(name)
