"""msgpack-python (its C extension) with python-socketio's msgpack packet layer, on the packets of
Benchmarks/CodecBenchmark (the same bytes siotap's encoder writes for them): packets and MB a
second, one core, in CodecBenchmark's format. Run by Benchmarks/codec.sh with the peers' venv."""
import json
import sys
import time

from socketio.msgpack_packet import MsgPackPacket

nested = ["update"] + [{"id": 12345, "name": "a name \u00e9", "tags": ["x", "y"], "n": 0.25, "ok": True}] * 24 + [{"end": None}]
vectors = {
    "small event": {"type": 2, "data": ["chat message", {"text": "hello", "from": "alice"}], "nsp": "/"},
    "ack": {"type": 3, "data": ["ok", 42], "nsp": "/admin", "id": 13},
    "2 KB nested event": {"type": 2, "data": nested, "nsp": "/"},
    "1 MB binary event": {"type": 2, "data": ["upload", bytes([7]) * (1 << 20)], "nsp": "/"},
}


def measure(name, size, body, minimum=1.0):
    iterations = 0
    start = time.perf_counter()
    while True:
        for _ in range(64):
            body()
        iterations += 64
        elapsed = time.perf_counter() - start
        if elapsed >= minimum:
            break
    rate = iterations / elapsed
    print(f"{name}\t{int(rate)}\t{round(rate * size / 1e6, 1)}")


print("vector\tpackets/s\tMB/s")
for name, fields in vectors.items():
    packet = MsgPackPacket(packet_type=fields["type"], data=fields["data"], namespace=fields["nsp"], id=fields.get("id"))
    encoded = packet.encode()
    measure(f"msgpack decode {name}", len(encoded), lambda: MsgPackPacket(encoded_packet=encoded))
    measure(f"msgpack encode {name}", len(encoded), packet.encode)
