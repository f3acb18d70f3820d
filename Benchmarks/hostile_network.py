"""The network cases of Benchmarks/hostile.sh, against a running siotap on loopback.

    hostile_network.py slowloris PORT [SLOW] [SILENT]   slow heads a byte a second, silent ones; how long until all are closed
    hostile_network.py sni PROXY_PORT TARGET_PORT PID [NAMES]   NAMES distinct SNI names through forward mode; the proxy's RSS
    hostile_network.py patterns PROXY_PORT TARGET_PORT [HOSTS]  long CONNECT hosts against --ignore-hosts '(a+)+$', while a client is timed
    hostile_network.py idle PROXY_PORT PID [SESSIONS]     idle websocket and polling sessions through the proxy: RSS, and that all go
    hostile_network.py hoard PROXY_PORT PID [CONNS] [MB]  websocket peers that make the observer hold what they send (stray binary
                                                          messages before any Socket.IO packet; nine of ten announced attachments);
                                                          the proxy's peak RSS. Its upstream must take them: `hoard-upstream PORT`
    hostile_network.py hoard-upstream PORT                 answers every request with a 101 and reads whatever comes, until stopped
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


def ws_frame(opcode, payload):
    """A client's frame: masked, as RFC 6455 asks (a zero mask: the bytes stay as they are)."""
    head = bytes([0x80 | opcode])
    if len(payload) < 126:
        head += bytes([0x80 | len(payload)])
    elif len(payload) < 1 << 16:
        head += bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + len(payload).to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def hoard(proxy_port, pid, conns=4, megabytes=32):
    """`conns` WebSocket peers of each kind send what the observer would hold: stray binary
    messages of `megabytes` MiB before any Socket.IO packet (held while the parser is unknown),
    and a binary event announcing ten attachments followed by nine of that size (held until the
    tenth). The proxy's RSS is sampled throughout; its peak is the figure."""
    before = rss(pid)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    blob = bytes([0xAB]) * (megabytes << 20)
    placeholders = ",".join(f'{{"_placeholder":true,"num":{n}}}' for n in range(10))
    socks = []
    for kind in ("stray", "attachments"):
        for _ in range(conns):
            sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=30)
            sock.sendall(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            sock.recv(4096)
            if kind == "attachments":
                sock.sendall(ws_frame(1, f'4510-["upload",{placeholders}]'.encode()))
            for _ in range(9):
                sock.sendall(ws_frame(2, blob))
            socks.append(sock)
    time.sleep(1)
    done.set()
    sampler.join()
    print(f"hoard: {conns} conns of stray binary and {conns} of nine announced attachments, {megabytes} MiB each message: "
          f"proxy RSS {before:.1f} MB before, peak {peak[0]:.1f} MB ({(peak[0] - before) / (2 * conns * 9 * megabytes) * 100:.0f} % of "
          f"what was sent)", flush=True)
    for sock in socks:
        sock.close()


def hoard_upstream(port):
    """A WebSocket server that takes anything: 101 to every request, then reads and drops."""
    listener = socket.create_server(("127.0.0.1", port))

    import base64
    import hashlib
    import re

    def serve(conn):
        with conn:
            head = conn.recv(65536).decode(errors="replace")
            found = re.search(r"(?i)sec-websocket-key:\s*(\S+)", head)
            if not found:
                return
            key = found.group(1)
            accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            conn.sendall(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode())
            while conn.recv(1 << 20):
                pass

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    kind, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    cases = {"slowloris": slowloris, "sni": sni, "patterns": patterns, "idle": idle, "hoard": hoard, "hoard-upstream": hoard_upstream}
    sys.exit(cases[kind](*args) or 0)
