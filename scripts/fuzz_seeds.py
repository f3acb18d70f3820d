"""Writes the libFuzzer seed corpora for scripts/fuzz.sh from the fixtures and the codec test
vectors, in the input layout each target of Tests/Fuzz/SiotapFuzz.swift expects (a first byte
choosing version and mode, then the data)."""
import base64
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
out = pathlib.Path(sys.argv[1])
seeds = {name: [] for name in ["engine-payload", "socketio", "jwt", "capture-reader", "traffic-decoder", "websocket-stream",
                                "tcp-reassembly", "http-stream", "diagnoser"]}

# Engine.IO payloads (first byte: bit 0 = v3, the rest picks where the streaming decoder splits).
v4 = [b"4hello", b"0{\"sid\":\"abc\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000}\x1e40",
      b"4hello\x1ebAQIDBA==\x1e2probe", b"1", b"6"]
v3 = [b"6:4hello2:4\xe2\x82\xac", b"2:4\xf0\x9f\x98\x80", b"10:b4AQIDBA==", b"\x00\x05\xff4hello\x01\x04\xff\x04\x01\x02\x03",
      b"1:1", b"0:"]
seeds["engine-payload"] += [bytes([split << 1]) + body for split in (0, 3) for body in v4]
seeds["engine-payload"] += [bytes([1 | split << 1]) + body for split in (0, 4) for body in v3]

# Socket.IO packets (first byte: bit 0 = protocol v4; NUL-separated attachments follow).
vectors = ['0', '0/admin,{"token":"123"}', '1/admin,', '2["hello",1]', '2/admin,456["project:delete",123]',
           '3/admin,456[]', '4{"message":"Not authorized"}', '51-["hello",{"_placeholder":true,"num":0}]',
           '61-/admin,456[{"_placeholder":true,"num":0}]', '2["x",1e400,-0.0,"\\ud83d\\ude00"]']
for text in vectors:
    seeds["socketio"].append(b"\x00" + text.encode())
seeds["socketio"].append(b"\x00" + '51-["a",{"_placeholder":true,"num":0}]'.encode() + b"\x00\x01\x02\x03")

captures = sorted((ROOT / "fixtures").glob("*.jsonl"))
for path in captures:
    data = path.read_bytes()
    seeds["capture-reader"].append(data)
    seeds["capture-reader"].append(data[: len(data) // 2])
    seeds["diagnoser"].append(data)
    records = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
    eio3 = any(r["kind"] == "session" and r.get("eio") == 3 for r in records)
    raws = [r["raw"] for r in records if r["kind"] == "packet" and "raw" in r]
    for raw in raws:
        seeds["socketio"].append(bytes([1 if eio3 else 0]) + raw.encode())
    if raws:
        messages = ["4" + raw for raw in raws]
        payload = "\x1e".join(messages).encode() if not eio3 else "".join(f"{len(m)}:{m}" for m in messages).encode()
        seeds["engine-payload"].append(bytes([1 if eio3 else 0]) + payload)
        seeds["traffic-decoder"].append(bytes([1 if eio3 else 0]) + payload)
        seeds["traffic-decoder"].append(bytes([(1 if eio3 else 0) | 0b10000]) + b"\xfe".join(m.encode() for m in messages))
    for record in records:
        for text in (record.get("url", ""), json.dumps(record.get("data", ""))):
            for piece in text.replace('"', "&").replace("=", "&").split("&"):
                if piece.count(".") == 2 and piece.startswith("eyJ"):
                    seeds["jwt"].append(piece.encode())

# Raw WebSocket streams (first byte: the message size limit and the cut): masked and unmasked
# frames, every length form, fragments with a ping between them, a close frame.
def ws_frame(opcode, payload, fin=True, mask=None, form=None):
    head = bytes([(0x80 if fin else 0) | opcode])
    bit = 0x80 if mask else 0
    form = form or (7 if len(payload) < 126 else 16 if len(payload) < 65536 else 64)
    if form == 7:
        head += bytes([bit | len(payload)])
    elif form == 16:
        head += bytes([bit | 126]) + len(payload).to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + len(payload).to_bytes(8, "big")
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + payload
    return head + payload


# A binary event whose two base64 attachments (20 bytes each) pass the small attachment limit
# the first byte's bit 2 selects (long-polled, v4): the refusal and the rest let by.
attachment = b"b" + base64.b64encode(bytes(range(20)))
seeds["traffic-decoder"].append(bytes([0b10]) + b'452-["e",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]\x1e' + attachment + b"\x1e" + attachment + b'\x1e42["next"]')

seeds["websocket-stream"] += [
    bytes([200]) + ws_frame(1, b'42["hello",1]') + ws_frame(2, bytes(range(130)), mask=b"\x01\x02\x03\x04"),
    bytes([16]) + ws_frame(1, b'42["hel', fin=False, mask=b"abcd") + ws_frame(9, b"p", mask=b"efgh")
    + ws_frame(0, b'lo"]', mask=b"ijkl") + ws_frame(8, b"\x03\xe8bye"),
    bytes([255]) + ws_frame(1, b"4x", form=16) + ws_frame(2, b"\x04", form=64) + ws_frame(10, b""),
]

# TCP segments (flags-and-side byte, 16-bit sequence and acknowledgment offsets, length, bytes):
# a handshake, data both ways, one segment out of order, one retransmitted, FINs.
def segment(flags, seq, ack, payload=b"", server=False):
    return bytes([flags | (0x80 if server else 0)]) + seq.to_bytes(2, "big") + ack.to_bytes(2, "big") + bytes([len(payload)]) + payload

request = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\r\n"
answer = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n0{}x"
seeds["tcp-reassembly"] += [
    segment(0x02, 0, 0) + segment(0x12, 0, 1, server=True) + segment(0x10, 1, 1, request[:20]) + segment(0x10, 21, 1, request[20:])
    + segment(0x10, 1, 1, request[:20]) + segment(0x10, 1, 1 + len(request), answer, server=True) + segment(0x11, 1 + len(request), 1 + len(answer))
    + segment(0x11, 1 + len(answer), 2 + len(request), server=True),
    segment(0x10, 50, 7, b"late start") + segment(0x14, 60, 7) + segment(0x10, 5, 60, b"x", server=True),
]

# HTTP conversations (first byte: where to cut; client bytes, NUL, server bytes).
upgrade = (b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
           + ws_frame(1, b"2probe", mask=b"\x01\x02\x03\x04"))
seeds["http-stream"] += [
    bytes([7]) + request + b"POST /socket.io/?EIO=4&sid=a HTTP/1.1\r\nContent-Length: 2\r\n\r\n40" + b"\x00" + answer
    + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    bytes([40]) + upgrade + b"\x00" + b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    + bytes([0xC1, 5]) + bytes.fromhex("3231040000"),
    bytes([3]) + b"garbage\r\nGET /b HTTP/1.1\r\n\r\n" + b"\x00" + b"HTTP/1.0 204 No Content\r\n\r\n",
]

# Tokens of every shape the inspector tells apart, signed with the fuzz target's key.
try:
    import warnings

    import jwt
    warnings.filterwarnings("ignore")  # short HMAC keys are the point of some seeds
    secret = "fuzz-secret-long-enough-for-hs256!!"
    for claims in ({"id": 1}, {"id": 2, "exp": 1, "nbf": 2_000_000_000}, {"sub": "x", "iat": 1_800_000_000}):
        seeds["jwt"].append(jwt.encode(claims, secret, algorithm="HS256").encode())
        seeds["jwt"].append(jwt.encode(claims, "other-secret-long-enough-for-hs256!", algorithm="HS512").encode())
    seeds["jwt"].append(b"eyJhbGciOiJub25lIn0.eyJpZCI6MX0.")
except ImportError:
    pass

# msgpack: Socket.IO packets as python-socketio's msgpack serializer writes them, and values of
# every type (when the msgpack package is in the venv).
try:
    import msgpack

    seeds["msgpack"] = [msgpack.packb(value, use_bin_type=True) for value in [
        {"type": 0, "data": {"token": "t"}, "nsp": "/"},
        {"type": 2, "data": ["chat", {"n": 12345678901234567890}, b"\x01\x02"], "nsp": "/admin", "id": 7},
        {"type": 3, "data": [None, True, -1.5], "nsp": "/", "id": 1},
        {"type": 4, "data": {"message": "no"}, "nsp": "/"},
        [0, -1, 255, -129, 2**32, -2**63, 0.1, "caf\u00e9", b"", {1: 2}, [[[]]]],
        msgpack.ExtType(5, b"\x01\x02\x03\x04"),
    ]]
except ImportError:
    pass

# HAR files (first byte: where the bytes are cut): the import tests' shapes, small.
har = {"log": {"version": "1.2", "entries": [
    {"startedDateTime": "2026-11-30T10:00:00.000Z", "time": 10,
     "request": {"method": "GET", "url": "http://localhost:3000/socket.io/?EIO=4&transport=polling", "headers": [{"name": "Host", "value": "x"}]},
     "response": {"status": 200, "headers": [], "content": {"text": "0{\"sid\":\"S1\"}"}}},
    {"startedDateTime": "2026-11-30T10:00:02.000Z", "time": 0,
     "request": {"method": "GET", "url": "ws://localhost:3000/socket.io/?EIO=4&transport=websocket&sid=S1", "headers": []},
     "response": {"status": 101, "headers": [], "content": {}},
     "_webSocketMessages": [{"type": "send", "time": 1796032802.5, "opcode": 1, "data": "2probe"},
                            {"type": "receive", "time": 1796032803.1, "opcode": 2, "data": "BAEC"}]}]}}
seeds["har"] = [bytes([cut]) + json.dumps(har).encode() for cut in (0, 37, 200)]
seeds["har"].append(bytes([9]) + b'{"pages":[{"entries":[1]}],"log":{"creator":{"name":"]}\\"["},"entries":[{"request":{}}]}}')

# The byte relay's framing: a cut, then a head (and a chunked body, read from the start too).
heads = [
    b"POST /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\nHost: a:1\r\nContent-Length: 5\r\nConnection: keep-alive, X-Hop\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
]
chunks = [b"4\r\nWiki\r\n7;ext=1\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nNEXT", b"0\r\n\r\n"]
seeds["http-framing"] = [bytes([cut]) + item for cut in (0, 7, 40) for item in heads + chunks]

# The live gate: packets (0), held ones (1), decisions (2-4 and a pick), acks (5, 6), checks (7),
# on both directions (the high bit).
seeds["gate"] = [bytes([1, 0, 0x81, 0x80, 7, 2, 0, 7, 1, 1, 0, 4, 1, 3, 0, 7]), bytes([5, 0x86, 0, 6, 0, 0x85, 7])]

# Interval logs (mode 0: a log's text; any other first byte: a histogram's counts before compression).
def zigzag(value):
    rest = ((value << 1) ^ (value >> 63)) & (2**64 - 1)
    out = bytearray()
    for _ in range(8):
        if rest < 0x80:
            return bytes(out + bytes([rest]))
        out.append((rest & 0x7F) | 0x80)
        rest >>= 7
    return bytes(out + bytes([rest & 0xFF]))


def histf(counts):
    import base64, struct, zlib
    payload = b"".join(zigzag(value) for value in counts)
    encoded = struct.pack(">IIIIQQd", 0x1C849313, len(payload), 0, 3, 1, 3_600_000_000, 1.0) + payload
    compressed = zlib.compress(encoded)
    return base64.b64encode(struct.pack(">II", 0x1C849314, len(compressed)) + compressed).decode()


log = "\n".join([
    "#[siotap load worker 0 of 1]",
    '#[siotap: {"started":3,"peak":3,"completed":3,"duration_s":2,"received":{"news":4},"errors":{"ack_timeout":1},'
    '"names":{"ack:ask":"ask"},"peak_rss_kb":100,"baseline_rss_kb":50}]',
    '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"',
    f"Tag=connect,0.000,2.000,0.300,{histf([0, 1, -98, 2])}",
    f"Tag=ack:ask,0.000,2.000,0.600,{histf([-200, 3, 0, 1])}",
])
seeds["hlog"] = [b"\0" + log.encode(), b"\1" + b"".join(zigzag(v) for v in [0, 5, -1000, 7, 1])]

for name, items in seeds.items():
    directory = out / name
    directory.mkdir(parents=True, exist_ok=True)
    for index, item in enumerate(items):
        (directory / f"seed-{index:04d}").write_bytes(item)
print(", ".join(f"{name}: {len(items)} seeds" for name, items in seeds.items()), file=sys.stderr)
