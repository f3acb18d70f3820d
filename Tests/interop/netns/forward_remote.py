"""Run inside a fresh network namespace (`unshare -n`): forward mode with --allow-remote, a client
on an address other than 127/8 (given to this namespace's own loopback device) and one on
loopback. Prints one JSON line of what each request got; exits 0."""
import json
import re
import socket
import subprocess
import sys
import tempfile

SIOTAP = sys.argv[1]
REMOTE = "10.231.7.1"  # a second address of this namespace's own loopback device: the traffic never leaves it

for command in (["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", f"{REMOTE}/32", "dev", "lo"]):
    subprocess.run(command, check=True)

directory = tempfile.mkdtemp()
started = []


def start(command, stream="stdout", pattern=r"(?:127\.0\.0\.1|0\.0\.0\.0|10\.231\.7\.1):(\d+)"):
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started.append(process)
    for _ in range(5):
        line = getattr(process, stream).readline()
        found = re.search(pattern, line)
        if found:
            return int(found.group(1))
    raise RuntimeError(f"{command[1]} did not start")


def ask(proxy_port, request, source):
    """Sends `request` to the proxy from `source`; the status line's code, or the error."""
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect((REMOTE if source == REMOTE else "127.0.0.1", proxy_port))
    sock.sendall(request.encode())
    answer = b""
    while b"\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    sock.close()
    return answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else repr(answer)


try:
    loopback_server = start([SIOTAP, "serve", "--listen", "127.0.0.1:0"])
    machine_server = start([SIOTAP, "serve", "--listen", f"{REMOTE}:0"])
    proxy = start([SIOTAP, "proxy", "--mode", "forward", "--listen", "0.0.0.0:0", "--allow-remote", "--quiet",
                   "--ca-dir", directory + "/ca"], stream="stderr", pattern=r"forward proxy on http://[^:]+:(\d+)")
    allowing = start([SIOTAP, "proxy", "--mode", "forward", "--listen", "0.0.0.0:0", "--allow-remote", "--quiet",
                      "--ca-dir", directory + "/ca", "--allow-hosts", r"^127\.0\.0\.1$"], stream="stderr",
                     pattern=r"forward proxy on http://[^:]+:(\d+)")
    poll = "/socket.io/?EIO=4&transport=polling"
    get = lambda authority: f"GET http://{authority}{poll} HTTP/1.1\r\nHost: {authority}\r\n\r\n"
    connect = lambda authority: f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n"
    results = {
        "remote GET loopback": ask(proxy, get(f"127.0.0.1:{loopback_server}"), REMOTE),
        "remote GET localhost": ask(proxy, get(f"localhost:{loopback_server}"), REMOTE),
        "remote CONNECT loopback": ask(proxy, connect(f"127.0.0.1:{loopback_server}"), REMOTE),
        "remote CONNECT link-local": ask(proxy, connect("169.254.169.254:80"), REMOTE),
        "remote GET siotap itself": ask(proxy, get(f"{REMOTE}:{proxy}"), REMOTE),
        "remote GET another host": ask(proxy, get(f"{REMOTE}:{machine_server}"), REMOTE),
        "local GET loopback": ask(proxy, get(f"127.0.0.1:{loopback_server}"), "127.0.0.1"),
        "remote GET loopback, --allow-hosts names it": ask(allowing, get(f"127.0.0.1:{loopback_server}"), REMOTE),
    }
    print(json.dumps(results))
finally:
    for process in started:
        process.kill()
