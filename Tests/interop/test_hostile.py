"""Hostile clients and limits (#25): every listener closes what does not finish its request, a
process out of file descriptors waits instead of spinning, and the soft descriptor limit is
raised at start. The heavy cases (bomb pcaps, 10,000 SNI names, huge HAR files) are in
Benchmarks/hostile.sh."""
import os
import re
import socket
import subprocess
import time

import requests

from conftest import ROOT, SIOTAP, Proxy, Server, wait_until

HEAD_LIMIT = 10  # seconds: HTTPServer's default for a first request's head


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def closed_by_peer(sock):
    """Whether the other side has closed `sock` (reads EOF or a reset), without waiting."""
    sock.setblocking(False)
    try:
        return sock.recv(1024) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


def test_every_listener_closes_silent_slow_and_stalled_clients(tmp_path):
    """Slowloris on the built-in server, the reverse proxy, forward mode and the inspector: silent
    connections, heads sent a byte a second and a body that stops are all closed at the limit,
    while a normal client is served throughout."""
    server = Server("--app", "chat")
    for directory in ("reverse", "forward"):
        (tmp_path / directory).mkdir()
    reverse = Proxy(server.url, tmp_path / "reverse")
    forward = Proxy(None, tmp_path / "forward", "--mode", "forward", "--ca-dir", str(tmp_path / "ca"))
    view = subprocess.Popen([SIOTAP, "view", str(ROOT / "fixtures" / "chat-websocket.jsonl"), "--ui", "127.0.0.1:0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    inspector = view.stderr.readline().split("the inspector is at ", 1)[1].split()[0]
    inspector_port = int(re.search(r":(\d+)/", inspector).group(1))
    listeners = {"serve": int(server.port), "proxy": int(reverse.port), "forward": int(forward.port), "inspector": inspector_port}
    try:
        held = {}
        for name, port in listeners.items():
            silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
            slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
            stalled = socket.create_connection(("127.0.0.1", port))
            stalled.sendall(b"POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n12345")
            held[name] = (silent, slow, stalled)
        started = time.monotonic()
        # A byte a second on every slow head, for longer than the limit; a normal client is served meanwhile.
        while time.monotonic() - started < HEAD_LIMIT + 3:
            for _, slow, _ in held.values():
                for sock in slow:
                    try:
                        sock.send(b"X")
                    except OSError:
                        pass
            assert requests.get(f"{server.url}/socket.io/?EIO=4&transport=polling", timeout=2).status_code == 200
            assert requests.get(f"{reverse.url}/socket.io/?EIO=4&transport=polling", timeout=2).status_code == 200
            time.sleep(1)
        for name, (silent, slow, stalled) in held.items():
            open_ones = [kind for kind, socks in (("silent", silent), ("slow", slow), ("stalled", [stalled]))
                         for sock in socks if not wait_until(lambda sock=sock: closed_by_peer(sock), timeout=3)]
            assert open_ones == [], f"{name}: still open: {open_ones}"
            for sock in silent + slow + [stalled]:
                sock.close()
        assert requests.get(inspector, timeout=2).status_code == 200
    finally:
        view.send_signal(2)
        view.wait(timeout=10)
        forward.stop()
        reverse.stop()
        server.stop()


def test_out_of_file_descriptors_waits_and_says_so_once():
    """At the descriptor limit the listener pauses instead of retrying accept at full speed; it
    says so once, and a client is served as soon as descriptors are free again."""
    process = subprocess.Popen(["prlimit", "--nofile=64:64", "--", SIOTAP, "serve", "--listen", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
        held = []
        for _ in range(100):  # more than the limit: the rest wait in the listen backlog
            try:
                held.append(socket.create_connection(("127.0.0.1", port), timeout=0.5))
            except OSError:
                break
        time.sleep(0.5)
        before = cpu_seconds(process.pid)
        time.sleep(2)
        spent = cpu_seconds(process.pid) - before
        assert spent < 0.3, f"{spent:.2f} s of CPU in 2 s at the limit: accept is spinning"
        for sock in held:
            sock.close()
        answer = requests.get(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling", timeout=5)
        assert answer.status_code == 200 and answer.text.startswith("0{")
    finally:
        process.send_signal(2)
        process.wait(timeout=10)
    said = process.stderr.read()
    assert said.count("out of file descriptors (EMFILE)") == 1, said


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one():
    process = subprocess.Popen(["prlimit", "--nofile=256:4096", "--", SIOTAP, "serve", "--listen", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        process.stdout.readline()
        limits = open(f"/proc/{process.pid}/limits").read()
        soft, hard = re.search(r"Max open files\s+(\d+)\s+(\d+)", limits).groups()
        assert (soft, hard) == ("4096", "4096"), limits
    finally:
        process.send_signal(2)
        process.wait(timeout=10)


def hostile_files():
    import importlib.util
    spec = importlib.util.spec_from_file_location("hostile_files", ROOT / "Benchmarks" / "hostile_files.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def import_records(path, *args):
    result = subprocess.run([SIOTAP, "import", str(path), "--json", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    import json
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_compression_bomb_is_cut_off_at_the_inflation_budget(tmp_path):
    """gzip polling bodies and permessage-deflate messages share one budget: what is past it is
    an import.inflate_limit error record, never data; the default budget grows with the file."""
    files = hostile_files()
    polling, websocket = tmp_path / "gzip.pcap", tmp_path / "deflate.pcap"
    files.gzip_polling(polling, bodies=4, size=4 << 20)
    files.deflate_websocket(websocket, messages=4, size=4 << 20)
    for path in (polling, websocket):
        records = import_records(path, "--max-inflate", "10MB")
        packets = [r for r in records if r["kind"] == "packet" and r.get("event") == "big"]
        limits = [r for r in records if r["kind"] == "error" and r["code"] == "import.inflate_limit"]
        assert len(packets) == 2 and len(packets[0]["args"][0]) == (4 << 20) - 20, path.name
        assert len(limits) == 2 and "--max-inflate" in limits[0]["message"], path.name
    # The default: 64 MiB and 100 times the file (a few kB here): two 30 MiB bodies, not three.
    files.gzip_polling(polling, bodies=3, size=30 << 20)
    records = import_records(polling)
    assert [r["kind"] for r in records if r["kind"] in ("packet", "error") and r.get("event", "big") == "big" and r.get("code", "import.inflate_limit") == "import.inflate_limit"] \
        == ["packet", "packet", "error"]


def test_a_har_file_is_read_as_a_stream(tmp_path):
    """A HAR with 20,000 entries written out of order imports in time order (its entries are
    read one at a time and sorted on disk, not parsed whole)."""
    import json
    har = tmp_path / "many.har"
    files = hostile_files()
    files.har(har, entries=20_000)
    # Reverse the entries' order in the file: the import must put them back.
    document = json.loads(har.read_text())
    document["log"]["entries"].reverse()
    har.write_text(json.dumps(document))
    records = import_records(har)
    ticks = [r["args"][0] for r in records if r["kind"] == "packet" and r.get("event") == "tick"]
    assert len(ticks) == 20_000
    times = [r["ts"] for r in records]
    assert times == sorted(times)


def test_forward_mode_keeps_remote_clients_off_this_machine():
    """`--allow-remote`: a client on another address cannot reach this machine's loopback (by
    address or by name), link-local addresses or siotap's own port; it reaches other hosts, a
    client on this machine reaches everything, and --allow-hosts lets a named host through. Run in
    a network namespace of its own, whose loopback device gets a second address for the remote client."""
    import json
    import sys
    import pytest
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no network namespaces here (unshare -n): " + probe.stderr.decode())
    result = subprocess.run(["unshare", "-n", sys.executable, str(ROOT / "Tests" / "interop" / "netns" / "forward_remote.py"), SIOTAP],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout.splitlines()[-1])
    assert got == {
        "remote GET loopback": "403",
        "remote GET localhost": "403",
        "remote CONNECT loopback": "403",
        "remote CONNECT link-local": "403",
        "remote GET siotap itself": "403",
        "remote GET another host": "200",
        "local GET loopback": "200",
        "remote GET loopback, --allow-hosts names it": "200",
    }, got
