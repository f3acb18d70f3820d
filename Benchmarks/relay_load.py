"""Load for Benchmarks/relay-cpu.sh: N aiohttp clients (independent of siotap's own client)
speaking raw Engine.IO 4 / Socket.IO 5 to the conformance contract: each sends
`42["message",PAYLOAD]` and waits for `42["message-back",...]`. Over WebSocket, or with
TRANSPORT=polling over HTTP long-polling: a round trip is then a POST and a GET (four HTTP
messages through a relay), on kept-alive connections.

    relay_load.py URL CLIENTS SECONDS [RATE] [PID]

Without RATE every client goes as fast as its answers come; with RATE the clients together send
RATE round trips a second. An https:// URL is trusted through CAFILE (the environment variable). With PID, the CPU time that process used during the run is measured
from /proc. Prints one JSON object: round trips, seconds, throughput, latency percentiles (ms),
and the process's CPU microseconds per round trip.
"""
import asyncio
import json
import os
import ssl
import sys
import time

import aiohttp

URL, CLIENTS, SECONDS = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
RATE = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] != "-" else None
PID = int(sys.argv[5]) if len(sys.argv) > 5 else None
PAYLOAD = "x" * 100
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


async def paced(index, stop, latencies, round_trip):
    """Round trips until `stop`: as fast as they come, or this client's share of RATE."""
    interval = CLIENTS / RATE if RATE else 0
    next_send = time.monotonic() + interval * index / CLIENTS
    while time.monotonic() < stop:
        if interval:
            delay = next_send - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            next_send += interval
        sent = time.perf_counter()
        await round_trip()
        latencies.append((time.perf_counter() - sent) * 1000)


async def client(session, index, stop, latencies):
    async with session.ws_connect(f"{URL}/socket.io/?EIO=4&transport=websocket") as ws:
        assert (await ws.receive_str()).startswith("0{")
        await ws.send_str("40")
        while not (await ws.receive_str()).startswith("40"):
            pass

        async def round_trip():
            await ws.send_str(f'42["message","{PAYLOAD}"]')
            while True:
                message = await ws.receive_str()
                if message == "2":  # the server's ping
                    await ws.send_str("3")
                elif message.startswith('42["message-back"'):
                    return

        await paced(index, stop, latencies, round_trip)


async def polling_client(session, index, stop, latencies):
    base = f"{URL}/socket.io/?EIO=4&transport=polling"
    async with session.get(base) as response:
        sid = json.loads((await response.text())[1:])["sid"]
    url = f"{base}&sid={sid}"

    async def poll_until(prefix):
        while True:
            async with session.get(url) as response:
                packets = (await response.text()).split("\x1e")
            if "2" in packets:  # the server's ping
                async with session.post(url, data="3") as response:
                    await response.read()
            if any(p.startswith(prefix) for p in packets):
                return

    async with session.post(url, data="40") as response:
        await response.read()
    await poll_until("40")

    async def round_trip():
        async with session.post(url, data=f'42["message","{PAYLOAD}"]') as response:
            await response.read()
        await poll_until('42["message-back"')

    await paced(index, stop, latencies, round_trip)


async def main():
    latencies = []
    tls = ssl.create_default_context(cafile=os.environ["CAFILE"]) if "CAFILE" in os.environ else None
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls or True, limit=0)) as session:
        cpu_before = cpu_seconds(PID) if PID else None
        started = time.monotonic()
        stop = started + SECONDS
        run = polling_client if os.environ.get("TRANSPORT") == "polling" else client
        await asyncio.gather(*(run(session, index, stop, latencies) for index in range(CLIENTS)))
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(PID) - cpu_before if PID else None
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] if latencies else None

    print(json.dumps({
        "round_trips": len(latencies), "seconds": elapsed, "per_second": len(latencies) / elapsed,
        "p50_ms": pct(0.5), "p99_ms": pct(0.99),
        "cpu_us_per_round_trip": cpu * 1e6 / len(latencies) if cpu is not None and latencies else None,
    }))


asyncio.run(main())
