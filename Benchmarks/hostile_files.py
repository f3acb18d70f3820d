"""Makes the hostile files of Benchmarks/hostile.sh in DIR: small files that expand to gigabytes,
or that cost time out of all proportion, in the shapes a stranger could send.

    hostile_files.py DIR [KIND ...]     (kinds: gzip-polling deflate-websocket reassembly har long-line no-newline)
"""
import gzip
import json
import os
import struct
import sys
import zlib

CLIENT, SERVER = ("127.0.0.1", 50000), ("127.0.0.1", 3000)


class Pcap:
    """A classic pcap (Ethernet, IPv4, TCP) of one connection, written frame by frame."""

    def __init__(self, path):
        self.out = open(path, "wb")
        self.out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.seq = {CLIENT: 1000, SERVER: 5000}
        self.time = 1_800_000_000.0

    def frame(self, source, destination, flags, payload=b"", seq=None):
        ip_header = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + 20 + len(payload), 0, 0, 64, 6, 0,
                                bytes(map(int, source[0].split("."))), bytes(map(int, destination[0].split("."))))
        sequence = self.seq[source] if seq is None else seq
        tcp = struct.pack(">HHIIBBHHH", source[1], destination[1], sequence, self.seq[destination], 5 << 4, flags, 65535, 0, 0)
        frame = b"\0" * 12 + b"\x08\x00" + ip_header + tcp + payload
        self.time += 0.0001
        self.out.write(struct.pack("<IIII", int(self.time), int(self.time % 1 * 1e6), len(frame), len(frame)))
        self.out.write(frame)

    def handshake(self):
        self.frame(CLIENT, SERVER, 0x02)
        self.seq[CLIENT] += 1
        self.frame(SERVER, CLIENT, 0x12)
        self.seq[SERVER] += 1
        self.frame(CLIENT, SERVER, 0x10)

    def send(self, source, data, chunk=60000):
        destination = SERVER if source == CLIENT else CLIENT
        for start in range(0, len(data), chunk):
            piece = data[start:start + chunk]
            self.frame(source, destination, 0x18, piece)
            self.seq[source] = (self.seq[source] + len(piece)) % (1 << 32)

    def close(self):
        self.out.close()


def big_message(size):
    """An Engine.IO message packet of an event whose one argument is `size` bytes of 'a'."""
    return b'42["big","' + b"a" * size + b'"]'


def gzip_polling(path, bodies=16, size=60 << 20):
    """Polling responses with Content-Encoding: gzip, each inflating to `size` bytes."""
    pcap = Pcap(path)
    pcap.handshake()
    open_packet = b'0{"sid":"S","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
    pcap.send(CLIENT, b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
    pcap.send(SERVER, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(open_packet) + open_packet)
    inflated = big_message(size - 20)
    squeezed = gzip.compress(inflated, 9)
    for _ in range(bodies):
        pcap.send(CLIENT, b"GET /socket.io/?EIO=4&transport=polling&sid=S HTTP/1.1\r\nHost: x\r\n\r\n")
        pcap.send(SERVER, b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(squeezed) + squeezed)
    pcap.close()


def deflate_websocket(path, messages=32, size=60 << 20):
    """A WebSocket with permessage-deflate whose server messages each inflate to `size` bytes."""
    pcap = Pcap(path)
    pcap.handshake()
    pcap.send(CLIENT, b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                      b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
    pcap.send(SERVER, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                      b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\r\n")
    opened = b'0{"sid":"S","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
    pcap.send(SERVER, bytes([0x81, len(opened)]) + opened)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    squeezed = compressor.compress(big_message(size - 20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    squeezed = squeezed[:-4]  # the sender takes the sync flush's tail off (RFC 7692)
    header = b"\xc1" + (b"\x7e" + struct.pack(">H", len(squeezed)) if len(squeezed) < 65536 else b"\x7f" + struct.pack(">Q", len(squeezed)))
    for _ in range(messages):
        pcap.send(SERVER, header + squeezed)
    pcap.close()


def reassembly(path, segments=80_000):
    """A request whose bytes come one a segment, last first."""
    pcap = Pcap(path)
    pcap.handshake()
    body = b"x" * (segments - 100)
    request = b"POST /socket.io/?EIO=4&transport=polling&sid=S HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    request = request[:segments]
    base = pcap.seq[CLIENT]
    for offset in reversed(range(len(request))):
        pcap.frame(CLIENT, SERVER, 0x18, request[offset:offset + 1], seq=base + offset)
    pcap.close()


def har(path, entries=1_000_000):
    """A HAR file of `entries` polling exchanges (about 240 bytes each), written as it goes."""
    with open(path, "w") as out:
        out.write('{"log":{"version":"1.2","creator":{"name":"hostile","version":"1"},"entries":[')
        for index in range(entries):
            entry = {
                "startedDateTime": "2026-11-27T10:%02d:%02d.%03dZ" % (index // 60000 % 60, index // 1000 % 60, index % 1000),
                "time": 1,
                "request": {"method": "GET", "url": f"http://localhost:3000/socket.io/?EIO=4&transport=polling&sid=S{index % 1000}", "headers": []},
                "response": {"status": 200, "headers": [], "content": {"text": '42["tick",%d]' % index}},
            }
            out.write(("," if index else "") + json.dumps(entry, separators=(",", ":")))
        out.write("]}}\n")


def long_line(path, size=40 << 20):
    """A capture with one record of `size` bytes of argument between two small ones."""
    small = '{"seq":%d,"ts":"2026-11-27T10:33:41.682056Z","kind":"session","conn":"c1","url":"/socket.io/?EIO=4&transport=websocket","eio":4,"transport":"websocket"}\n'
    with open(path, "w") as out:
        out.write(small % 1)
        out.write('{"seq":2,"ts":"2026-11-27T10:33:41.719792Z","kind":"packet","conn":"c1","dir":"c2s","transport":"websocket","type":"EVENT","nsp":"/",'
                  '"event":"big","args":["' + "a" * size + '"],"raw":"42[\\"big\\",\\"' + "a" * size + '\\"]"}\n')
        out.write((small % 3).replace('"session"', '"session"'))


def no_newline(path, size=200 << 20):
    """A capture whose last line never ends: `size` bytes with no newline."""
    with open(path, "wb") as out:
        out.write(b'{"seq":1,"ts":"2026-11-27T10:33:41.682056Z","kind":"session","conn":"c1","url":"/socket.io/?EIO=4&transport=websocket","eio":4,"transport":"websocket"}\n')
        chunk = b"a" * (1 << 20)
        out.write(b'{"seq":2,"raw":"')
        for _ in range(size >> 20):
            out.write(chunk)


KINDS = {"gzip-polling": (gzip_polling, "gzip-polling.pcap"), "deflate-websocket": (deflate_websocket, "deflate-websocket.pcap"),
         "reassembly": (reassembly, "reassembly.pcap"), "har": (har, "big.har"), "long-line": (long_line, "long-line.jsonl"),
         "no-newline": (no_newline, "no-newline.jsonl")}

if __name__ == "__main__":
    directory = sys.argv[1]
    for kind in sys.argv[2:] or KINDS:
        make, name = KINDS[kind]
        make(os.path.join(directory, name))
        print(f"{name}: {os.path.getsize(os.path.join(directory, name)):,} bytes")
