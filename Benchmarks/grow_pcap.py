"""Grows a pcap of one recorded session into a big one for Benchmarks/import.sh: the session's
frames again and again, each copy on another client port and later in time, until the file
holds SIZE_MB megabytes. Classic pcap from tcpdump on `lo` (Ethernet framing, IPv4).

    grow_pcap.py SEED.pcap OUT.pcap SIZE_MB SERVER_PORT
"""
import struct
import sys

seed, out, size_mb, server_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = open(seed, "rb").read()
header, frames, offset = data[:24], [], 24
while offset + 16 <= len(data):
    seconds, micros, captured, original = struct.unpack("<IIII", data[offset:offset + 16])
    frames.append((seconds + micros / 1e6, bytearray(data[offset + 16:offset + 16 + captured]), original))
    offset += 16 + captured
start, end = frames[0][0], frames[-1][0]
span = end - start + 1
target = size_mb << 20
written = 0
with open(out, "wb") as sink:
    sink.write(header)
    copy = 0
    while written < target:
        for when, frame, original in frames:
            # Ethernet (14), IPv4 with its header length, then the TCP ports.
            tcp = 14 + (frame[14] & 0x0F) * 4
            source, destination = struct.unpack(">HH", frame[tcp:tcp + 4])
            client = 20000 + copy % 40000
            if source != server_port:
                source = client
            if destination != server_port:
                destination = client
            frame[tcp:tcp + 4] = struct.pack(">HH", source, destination)
            stamp = when + copy * span
            sink.write(struct.pack("<IIII", int(stamp), int((stamp % 1) * 1e6), len(frame), original))
            sink.write(frame)
            written += 16 + len(frame)
        copy += 1
print(copy)
