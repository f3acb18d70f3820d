"""A capture for timing `siotap diagnose` with many acks pending on one conn: PENDING emits asking
for an ack, then ROUNDS rounds of one more emit and the answer to the oldest, so PENDING acks stay
open throughout (python3 Benchmarks/pending_acks_capture.py [PENDING] [ROUNDS] > capture.jsonl).
The session's first records are fixtures/chat-websocket.jsonl's."""
import json
import pathlib
import sys

pending = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30000
fixture = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "chat-websocket.jsonl"
head = fixture.read_text().splitlines()[:3]


def emit(i):
    return {"kind": "packet", "conn": "c1", "dir": "c2s", "transport": "websocket", "type": "EVENT", "nsp": "/",
            "id": i, "event": "ask", "args": [i], "raw": f'42{i}["ask",{i}]'}


def answer(i):
    return {"kind": "packet", "conn": "c1", "dir": "s2c", "transport": "websocket", "type": "ACK", "nsp": "/",
            "id": i, "args": [i], "raw": f"43{i}[{i}]"}


records = [emit(i) for i in range(pending)]
for i in range(pending, pending + rounds):
    records += [emit(i), answer(i - pending)]
print("\n".join(head))
for seq, record in enumerate(records, start=len(head) + 1):
    print(json.dumps({"seq": seq, "ts": f"2026-11-27T10:34:{10 + seq // 1_000_000:02d}.{seq % 1_000_000:06d}Z", **record}))
