"""Writes the capture Benchmarks/load.sh plays with `siotap load`: one WebSocket conn to the
conformance app that asks `message-with-ack` once a second for DURATION seconds, the scenario
Locust's users play (Benchmarks/locust_users.py).

Usage: load_capture.py DURATION > capture.jsonl"""
import json
import sys

duration = int(sys.argv[1])
start = 1_800_000_000.0
seq = 0


def record(time, kind, **fields):
    global seq
    seq += 1
    whole = int(time)
    stamp = f"{__import__('time').strftime('%Y-%m-%dT%H:%M:%S', __import__('time').gmtime(whole))}.{int((time - whole) * 1e6):06d}Z"
    print(json.dumps({"seq": seq, "ts": stamp, "kind": kind, "conn": "c1", **fields}, separators=(",", ":")))


record(start, "session", url="/socket.io/?EIO=4&transport=websocket", eio=4, transport="websocket")
record(start + 0.001, "packet", dir="c2s", transport="websocket", type="CONNECT", nsp="/", data={"token": "t"}, raw='0{"token":"t"}')
record(start + 0.002, "packet", dir="s2c", transport="websocket", type="CONNECT", nsp="/", data={"sid": "x"}, raw='0{"sid":"x"}')
for second in range(1, duration + 1):
    ask = start + second
    record(ask, "packet", dir="c2s", transport="websocket", type="EVENT", nsp="/", id=second, event="message-with-ack",
           args=[{"n": 1, "text": "load"}], raw=f'2{second}["message-with-ack",{{"n":1,"text":"load"}}]')
    record(ask + 0.001, "packet", dir="s2c", transport="websocket", type="ACK", nsp="/", id=second,
           args=[{"n": 1, "text": "load"}], raw=f'3{second}[{{"n":1,"text":"load"}}]')
record(start + duration + 0.5, "close", by="client", reason="close packet")
