"""Connection set-up for Benchmarks/tls-cost.sh: opens COUNT WebSocket Engine.IO sessions one
after another, each on a new TCP (and, for wss://, TLS) connection, reads the open packet and the
namespace's CONNECT, and closes. Independent of siotap's client (aiohttp).

    connect_cost.py URL COUNT PID

Prints one JSON object: the mean and p50 set-up time (ms) and the CPU microseconds process PID
spent per connection. An https:// URL is trusted through CAFILE (the environment variable).
"""
import asyncio
import json
import os
import ssl
import sys
import time

import aiohttp

URL, COUNT, PID = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def main():
    tls = ssl.create_default_context(cafile=os.environ["CAFILE"]) if "CAFILE" in os.environ else True
    times = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls, force_close=True)) as session:
        cpu_before = cpu_seconds(PID)
        for _ in range(COUNT):
            started = time.perf_counter()
            async with session.ws_connect(f"{URL}/socket.io/?EIO=4&transport=websocket") as ws:
                assert (await ws.receive_str()).startswith("0{")
                await ws.send_str("40")
                while not (await ws.receive_str()).startswith("40"):
                    pass
                times.append((time.perf_counter() - started) * 1000)
        cpu = cpu_seconds(PID) - cpu_before
    times.sort()
    print(json.dumps({"connections": COUNT, "mean_ms": sum(times) / len(times), "p50_ms": times[len(times) // 2],
                      "cpu_us_per_connection": cpu * 1e6 / COUNT}))


asyncio.run(main())
