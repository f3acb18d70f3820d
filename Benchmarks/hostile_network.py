"""The network cases of Benchmarks/hostile.sh, against a running siotap on loopback.

    hostile_network.py slowloris PORT [SLOW] [SILENT]   slow heads a byte a second, silent ones; how long until all are closed
    hostile_network.py sni PROXY_PORT TARGET_PORT PID [NAMES]   NAMES distinct SNI names through forward mode; the proxy's RSS
    hostile_network.py patterns PROXY_PORT TARGET_PORT [HOSTS]  long CONNECT hosts against --ignore-hosts '(a+)+$', while a client is timed
    hostile_network.py idle PROXY_PORT PID [SESSIONS]     idle websocket and polling sessions through the proxy: RSS, and that all go
"""
import socket
import ssl
import sys
import threading
import time


def rss(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def slowloris(port, slow=500, silent=50):
    sockets = []
    for index in range(slow + silent):
        sockets.append(socket.create_connection(("127.0.0.1", port)))
    started = time.monotonic()
    open_ones = set(range(len(sockets)))
    for sock in sockets:
        sock.setblocking(False)
    while open_ones and time.monotonic() - started < 60:
        for index in list(open_ones):
            sock = sockets[index]
            try:
                if index < slow:
                    sock.send(b"G")
                data = sock.recv(1024)
                if data == b"":
                    open_ones.discard(index)
            except BlockingIOError:
                pass
            except OSError:
                open_ones.discard(index)
        time.sleep(1)
    took = time.monotonic() - started
    print(f"slowloris: {slow} heads at 1 byte/s and {silent} silent connections; "
          + (f"all closed after {took:.1f} s" if not open_ones else f"{len(open_ones)} still open after {took:.0f} s"))
    for sock in sockets:
        sock.close()
    return 0 if not open_ones else 1


def connect_tunnel(proxy_port, target_port, name):
    sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
    sock.sendall(f"CONNECT 127.0.0.1:{target_port} HTTP/1.1\r\nHost: 127.0.0.1:{target_port}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    return sock, answer


def sni(proxy_port, target_port, pid, names=10_000):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    before = rss(pid)
    peak = before
    started = time.monotonic()
    for index in range(names):
        sock, answer = connect_tunnel(proxy_port, target_port, "")
        try:
            with context.wrap_socket(sock, server_hostname=f"name{index}.example") as tls:
                tls.do_handshake()
        except OSError:
            sock.close()
        if index % 1000 == 999:
            peak = max(peak, rss(pid))
            print(f"  {index + 1} names: proxy RSS {rss(pid):.1f} MB", flush=True)
    print(f"sni: {names} distinct SNI names in {time.monotonic() - started:.0f} s; proxy RSS {before:.1f} MB before, peak {peak:.1f} MB")


def patterns(proxy_port, target_port, hosts=8):
    """CONNECTs to long hosts that make '(a+)+$' backtrack, while a plain CONNECT is timed."""
    def hostile(index):
        host = "a" * (60 + index) + ".b"
        try:
            sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=30)
            sock.sendall(f"CONNECT {host}:{target_port} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            sock.recv(4096)
            sock.close()
        except OSError:
            pass
    threads = [threading.Thread(target=hostile, args=(index,)) for index in range(hosts)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    worst = 0.0
    while any(thread.is_alive() for thread in threads) or time.monotonic() - started < 1:
        asked = time.monotonic()
        sock, answer = connect_tunnel(proxy_port, target_port, "")
        sock.close()
        worst = max(worst, time.monotonic() - asked)
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    print(f"patterns: {hosts} long CONNECT hosts against (a+)+$ answered in {time.monotonic() - started:.2f} s; "
          f"a plain CONNECT meanwhile took at most {worst * 1000:.0f} ms")


def idle(proxy_port, pid, sessions=2000):
    """`sessions` idle WebSocket sessions and as many idle polling ones (each with its long-poll
    pending) through the proxy; its RSS with them open, and its descriptors once they have gone."""
    import os
    import re
    fds = lambda: len(os.listdir(f"/proc/{pid}/fd"))
    before_rss, before_fds = rss(pid), fds()
    held = []
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    for index in range(sessions):
        sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
        sock.sendall(f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        sock.recv(4096)
        held.append(sock)
    for index in range(sessions):
        sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
        sock.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(4096).decode(errors="replace")
        sid = re.search(r'"sid":"([^"]+)"', answer).group(1)
        sock.sendall(f"GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        held.append(sock)
    time.sleep(2)
    with_sessions = rss(pid)
    print(f"idle: {sessions} websocket + {sessions} polling sessions open: proxy RSS {before_rss:.1f} -> {with_sessions:.1f} MB, "
          f"{fds()} descriptors", flush=True)
    for sock in held:
        sock.close()
    started = time.monotonic()
    while fds() > before_fds + 10 and time.monotonic() - started < 120:
        time.sleep(1)
    print(f"idle: clients gone; {fds()} descriptors after {time.monotonic() - started:.0f} s (before: {before_fds}), RSS {rss(pid):.1f} MB")


if __name__ == "__main__":
    kind, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    sys.exit({"slowloris": slowloris, "sni": sni, "patterns": patterns, "idle": idle}[kind](*args) or 0)
