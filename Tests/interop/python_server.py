"""The chat and conformance contracts of docs/demo-apps.md, on python-socketio (a real Socket.IO
server): 5.x for Engine.IO 4 clients, 4.x (on Python 3.10, whose asyncio it still runs on) for
Engine.IO 3 clients. For tests that compare it with the built-in Swift server.

Usage: python_server.py chat|conformance SECRET [aiohttp|uvicorn] [PATH]
(prints "listening on http://127.0.0.1:PORT/PATH"). The stack is aiohttp by default; uvicorn runs
python-socketio's ASGI app with the `websockets` implementation (strict HTTP/1.1). PATH is where
Engine.IO is mounted (socket.io by default). SERIALIZER=msgpack in the environment switches
the server to the msgpack parser; JWT_PUBLIC_KEYS=a.pem,b.pem makes the chat accept tokens signed
by those keys' private halves too.
"""
import asyncio
import inspect
import os
import socket
import sys

import jwt
import socketio

app_name = sys.argv[1]
secret = sys.argv[2] if len(sys.argv) > 2 else "your-secret-key"
stack = sys.argv[3] if len(sys.argv) > 3 else "aiohttp"
path = (sys.argv[4] if len(sys.argv) > 4 else "socket.io").strip("/")
# uvicorn only: serve TLS with this certificate chain and key (PEM files).
tls = (sys.argv[5], sys.argv[6]) if len(sys.argv) > 6 else None
# TRANSPORTS=polling in the environment: a server that offers no WebSocket (refuses upgrades).
# CORS_ORIGINS=a,b: only those origins are allowed (python-engineio refuses others with a 400).
sio = socketio.AsyncServer(async_mode="asgi" if stack == "uvicorn" else "aiohttp",
                           cors_allowed_origins=os.environ["CORS_ORIGINS"].split(",") if os.environ.get("CORS_ORIGINS") else "*",
                           ping_interval=2, ping_timeout=2, max_http_buffer_size=3_000_000,
                           **({"transports": os.environ["TRANSPORTS"].split(",")} if os.environ.get("TRANSPORTS") else {}),
                           **({"serializer": "msgpack"} if os.environ.get("SERIALIZER") == "msgpack" else {}))


# The chat's tokens: HS256 with the secret, or, with JWT_PUBLIC_KEYS (PEM files, comma-separated),
# signed by the private half of any of those keys (RSA, EC or Ed25519, as PyJWT verifies them).
verification_keys = [(secret, ["HS256"])] + [
    (open(file).read(), ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"])
    for file in os.environ.get("JWT_PUBLIC_KEYS", "").split(",") if file]


def chat():
    def token_of(environ, auth):
        if isinstance(auth, dict) and auth.get("token"):
            return auth["token"]
        query = dict(pair.split("=", 1) for pair in environ.get("QUERY_STRING", "").split("&") if "=" in pair)
        if query.get("token"):
            return query["token"]
        header = environ.get("HTTP_AUTHORIZATION", "")
        return header[7:] if header.lower().startswith("bearer ") else None

    @sio.event
    async def connect(sid, environ, auth=None):  # 4.x passes no auth: protocol v4 has none
        token = token_of(environ, auth)
        if not token:
            raise socketio.exceptions.ConnectionRefusedError("Authentication error: No token provided")
        user = None
        for key, algorithms in verification_keys:
            try:
                user = jwt.decode(token, key, algorithms=algorithms)
                break
            except jwt.PyJWTError:
                pass
        if user is None:
            raise socketio.exceptions.ConnectionRefusedError("Authentication error: Invalid token")
        await sio.save_session(sid, {"user": user})
        await maybe(sio.enter_room(sid, f"user-{user.get('id')}"))

    @sio.on("user connection")
    async def user_connection(sid, data=None):
        await sio.emit("user connection", data, skip_sid=sid)

    @sio.on("message")
    async def message(sid, data=None):
        data = data if isinstance(data, dict) else {}
        await sio.emit("chat response", f"You sent: {text(data.get('message'))}", room=sid)
        await sio.emit("message", {"message": data.get("message"), "sender": data.get("sender")}, skip_sid=sid)

    @sio.on("user disconnected")
    async def user_disconnected(sid, data=None):
        await sio.emit("user disconnected", text(data))

    @sio.on("joinRoom")
    async def join_room(sid, room=None):
        user = (await sio.get_session(sid))["user"]
        if isinstance(room, str) and (room in user.get("rooms", []) or room.startswith("public-")):
            await maybe(sio.enter_room(sid, room))
            await sio.emit("roomJoined", room, room=sid)

    @sio.on("notify")
    async def notify(sid, data=None):
        if isinstance(data, dict) and "to" in data:
            await sio.emit("notification", {"message": data.get("message")}, room=f"user-{text(data['to'])}")


async def maybe(result):
    """enter_room is a coroutine in 5.x and a plain call in 4.x."""
    if inspect.isawaitable(result):
        await result


def text(value):
    """A string as it is, anything else as its JSON text (the contract's "as a string")."""
    import json
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def conformance():
    for namespace in ("/", "/custom"):
        def handlers(namespace):
            async def connect(sid, environ, auth=None):
                await sio.emit("auth", auth if auth is not None else {}, room=sid, namespace=namespace)

            async def message(sid, *args):
                await sio.emit("message-back", args if len(args) != 1 else args[0], room=sid, namespace=namespace)

            async def message_with_ack(sid, *args):
                return args if len(args) != 1 else args[0]

            sio.on("connect", connect, namespace=namespace)
            sio.on("message", message, namespace=namespace)
            sio.on("message-with-ack", message_with_ack, namespace=namespace)

        handlers(namespace)


def announce(port):
    scheme = "https" if tls else "http"
    print(f"python server: {app_name} on {stack} listening on {scheme}://127.0.0.1:{port}/{path}/", flush=True)


async def serve_aiohttp():
    from aiohttp import web
    app = web.Application()
    sio.attach(app, socketio_path=path)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    announce(site._server.sockets[0].getsockname()[1])
    await asyncio.Event().wait()


async def serve_uvicorn():
    import uvicorn
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    # Listening before saying so: connections made before uvicorn has started wait in the backlog
    # instead of being refused (a test's first connection raced uvicorn's start-up).
    listener.listen(128)
    # WebSocket-level pings every 50 ms: the `websockets` library closes the connection (1002) on an
    # unmasked client frame, so every pong a client sends is checked.
    config = uvicorn.Config(socketio.ASGIApp(sio, socketio_path=path), ws="websockets", log_level="warning",
                            lifespan="off", ws_ping_interval=0.05, ws_ping_timeout=5,
                            **({"ssl_certfile": tls[0], "ssl_keyfile": tls[1]} if tls else {}))
    server = uvicorn.Server(config)
    announce(listener.getsockname()[1])
    await server.serve(sockets=[listener])


async def main():
    chat() if app_name == "chat" else conformance()
    await (serve_uvicorn() if stack == "uvicorn" else serve_aiohttp())


asyncio.run(main())
