"""The web inspector in a real browser (Debian's Chromium, driven by Playwright) while a
python-socketio client talks through `siotap proxy --ui` to the built-in conformance server; and
`siotap view` on a capture file that is still being written."""
import json
import re
import subprocess
import time

import jsonschema
import pytest
import requests
import socketio
from playwright.sync_api import expect, sync_playwright

from conftest import ROOT, SECRET, SIOTAP, Proxy, wait_until
from test_chat_interop import token

SCHEMA = json.loads((ROOT / "docs" / "capture.schema.json").read_text())
SCREENSHOTS = ROOT / ".build" / "screenshots"
BIG = 12345678901234567890  # beyond 2^53: JSON.parse would round it


@pytest.fixture
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        yield chromium
        chromium.close()


def open_page(browser, url):
    """A page with its console errors and uncaught exceptions collected."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.problems = []
    page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.goto(url)
    return page


def jwt_claims(proxy):
    return [r for r in proxy.records() if r["kind"] == "jwt"][0]["claims"]


def inspector_url(proxy):
    return proxy.start_line.split("inspector at ", 1)[1].split()[0].rstrip(",")


def api(url, path):
    """An inspector route, with the run's token from the page's URL (http://host:port/?token=…)."""
    base, token = url.split("/?token=", 1)
    return f"{base}{path}{'&' if '?' in path else '?'}token={token}"


def echoes(proxy):
    return sum(1 for r in proxy.records() if r["kind"] == "packet" and r.get("event") == "message-back")


def session(proxy):
    """A client that connects with a token, gets an ack and sends a binary attachment, whose echo
    the capture shows. (Not the client's handler: python-engineio's client takes each message in a
    thread of its own, so a binary packet's attachment is now and then taken before its header, and
    python-socketio then fails to decode it, as in python-socketio#403; seen once in CI.)"""
    client = socketio.Client(reconnection=False)
    before = echoes(proxy)
    client.connect(proxy.url, transports=["websocket"], auth={"token": token(42, name="ada")}, wait_timeout=5)
    acked = client.call("message-with-ack", {"n": BIG, "text": "caf\u00e9"}, timeout=5)
    client.emit("message", b"\x01\x02\x03")
    assert wait_until(lambda: echoes(proxy) > before, timeout=5)
    client.disconnect()
    return acked


def test_a_live_session_in_the_inspector(conformance, tmp_path, browser):
    proxy = Proxy(conformance.url, tmp_path, "--jwt-secret", SECRET, "--ui", "127.0.0.1:0")
    try:
        url = inspector_url(proxy)
        page = open_page(browser, url)
        expect(page.locator("#status")).to_have_text("live")
        # The session runs while the page is open: its conn appears live.
        acked = session(proxy)
        assert acked == {"n": BIG, "text": "café"}
        conn = page.locator("#conn-rows .conn").first
        expect(conn).to_contain_text("closed by client", timeout=10_000)
        expect(conn).to_contain_text("websocket")
        expect(conn.locator("span").nth(3)).to_have_text("ada (id 42)")  # the user, from the token's claims
        conn.click()
        assert "#conn=c1" in page.url

        # The event with an ack: drawn to its ack, with the latency; its argument exact.
        event = page.locator(".row", has_text="message-with-ack #")
        expect(event).to_contain_text("acked")
        event.click()
        detail = page.locator("#detail")
        expect(detail).to_contain_text(str(BIG))
        expect(detail).to_contain_text("acked by #")
        expect(page.locator("#rows .row.paired")).to_contain_text("ack #")  # the ack drawn with its event
        expect(page.locator("#tokens")).to_contain_text("verified")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "inspector.png"))
        ack_latency = [r for r in proxy.records() if r["kind"] == "packet" and r["type"] == "ACK"][0]["latency_ms"]
        expect(event).to_contain_text(f"acked {ack_latency} ms")
        # j moves to the next record in the timeline (engine packets hidden); the ack answers the event.
        shown = [r for r in proxy.records() if r["kind"] != "engine"]
        event_seq = next(r["seq"] for r in shown if r.get("event") == "message-with-ack")
        following = shown[[r["seq"] for r in shown].index(event_seq) + 1]["seq"]
        page.locator("body").press("j")
        expect(page.locator("#detail h3").first).to_contain_text(f"#{following} ")
        page.locator(".row .what", has_text=re.compile("^ack #")).click()
        expect(detail).to_contain_text(f"answers #{event_seq} message-with-ack")

        # The binary attachment: its size, and its bytes in hex.
        page.locator(".row", has_text="message").filter(has_not_text="ack").first.click()
        expect(detail).to_contain_text("attachment 0: 3 bytes")
        detail.get_by_role("button", name="hex").click()
        expect(detail).to_contain_text("000000  01 02 03")

        # The token panel: verified with the proxy's key, and a countdown to exp.
        tokens = page.locator("#tokens")
        expect(tokens).to_contain_text("verified")
        expect(tokens).to_contain_text("expires in")
        claims = jwt_claims(proxy)
        expect(tokens).to_contain_text(time.strftime("expires %Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"])))
        expect(tokens).to_contain_text('"ada"')

        # The filter, read by the server as --filter reads it, narrows the timeline.
        page.locator("body").press("/")
        page.keyboard.type("event=message-with-ack")
        page.keyboard.press("Enter")
        expect(page.locator("#rows .row")).to_have_count(1)
        expect(page.locator("#rows .row")).to_contain_text("message-with-ack")
        assert "filter=event%3Dmessage-with-ack" in page.url or "filter=event=message-with-ack" in page.url
        page.locator("#filter").fill("colour=red")
        page.locator("#filter").press("Enter")
        expect(page.locator("#filter-error")).to_contain_text("unknown key colour")

        # Export: the selection as a capture, with its conn's session and close.
        page.locator("#filter").fill("event=message-with-ack")
        page.locator("#filter").press("Enter")
        exported = requests.get(url.split("/?")[0] + page.locator("#export").get_attribute("href")).text
        records = [json.loads(line) for line in exported.splitlines()]
        assert [r["kind"] for r in records] == ["session", "packet", "close"]
        assert records[1]["event"] == "message-with-ack" and str(BIG) in exported
        for record in records:
            jsonschema.validate(record, SCHEMA)
        written = {r["seq"]: r for r in proxy.records()}
        assert all(written[r["seq"]] == r for r in records), "exported lines are the capture's"
        assert page.problems == []
    finally:
        proxy.stop()


def test_view_follows_a_growing_capture(tmp_path, browser):
    capture = tmp_path / "growing.jsonl"
    fixture = (ROOT / "fixtures" / "conformance-binary.jsonl").read_text().splitlines(keepends=True)
    half = len(fixture) // 2
    capture.write_text("".join(fixture[:half]) + fixture[half][:10])  # a line still being written
    view = subprocess.Popen([SIOTAP, "view", str(capture), "--ui", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    try:
        line = view.stderr.readline()
        assert "the inspector is at" in line, line
        url = line.split("the inspector is at ", 1)[1].split()[0]
        page = open_page(browser, url)
        expect(page.locator("#source")).to_have_text(str(capture))
        page.locator("#show-engine").check()
        expect(page.locator("#count")).to_have_text(f"{half} records")
        # Paused, the page holds what comes; resumed, it shows it.
        page.locator("#pause").click()
        expect(page.locator("#status")).to_have_text("paused")
        with capture.open("a") as growing:
            growing.write(fixture[half][10:])
            growing.writelines(fixture[half + 1:])
        time.sleep(1)  # the file is looked at every 200 ms
        expect(page.locator("#count")).to_have_text(f"{half} records")
        page.locator("body").press(" ")
        expect(page.locator("#status")).to_have_text("live")
        expect(page.locator("#count")).to_have_text(f"{len(fixture)} records", timeout=5000)
        # Free text narrows the timeline, and goes into the URL.
        page.locator("#search").fill("message-back")
        expect(page.locator("#count")).to_have_text("1 record")
        assert "q=message-back" in page.url
        page.locator("#search").fill("")
        # The newest record is in view: the timeline follows the tail.
        last = json.loads(fixture[-1])
        expect(page.locator("#rows .row").last).to_contain_text(last["ts"][11:23])
        assert page.problems == []
    finally:
        view.terminate()
        view.wait(timeout=5)


def test_the_inspector_refuses_a_non_loopback_address_unless_allowed(tmp_path):
    result = subprocess.run([SIOTAP, "view", str(ROOT / "fixtures" / "chat-polling.jsonl"), "--ui", "0.0.0.0:0"],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 2 and "--ui-allow-remote" in result.stderr


def test_a_replay_report_beside_its_capture(tmp_path, browser):
    """`siotap replay --report` then `siotap view --report`: the changed path is highlighted,
    expected against what came, on the record it belongs to."""
    lines = (ROOT / "fixtures" / "conformance-binary.jsonl").read_text().splitlines(keepends=True)
    capture = tmp_path / "edited.jsonl"
    # The recorded ack said "custom"; pretend it said "recorded", so the replay differs there.
    edited = [line.replace('"args":["custom"],"raw":"3/custom,1[\\"custom\\"]"', '"args":["recorded"],"raw":"3/custom,1[\\"recorded\\"]"') for line in lines]
    assert edited != lines
    capture.write_text("".join(edited))
    report = tmp_path / "report.json"
    replay = subprocess.run([SIOTAP, "replay", str(capture), "--app", "conformance", "--report", str(report)], capture_output=True, text=True, timeout=60)
    assert replay.returncode == 1, replay.stdout + replay.stderr
    written = json.loads(report.read_text())
    assert [(c["seq"], c["path"]) for c in written["connections"][0]["changed"]] == [(14, "args[0]")]
    view = subprocess.Popen([SIOTAP, "view", str(capture), "--report", str(report), "--ui", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    try:
        url = view.stderr.readline().split("the inspector is at ", 1)[1].split()[0]
        page = open_page(browser, url)
        conn = page.locator("#conn-rows .conn").first
        expect(conn).to_contain_text("1 difference")
        conn.click()
        expect(page.locator("#replay")).to_contain_text("1 changed, 0 never came, 0 came unrecorded")
        changed = page.locator("#rows .row.changed")
        expect(changed).to_have_count(1)
        expect(changed).to_contain_text("ack #1")
        changed.click()
        detail = page.locator("#detail")
        expect(detail).to_contain_text('args[0]: expected "recorded", came "custom"')
        expect(detail.locator(".tree .entry.marked")).to_have_text('0: "recorded"')
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "inspector-replay.png"))
        assert page.problems == []
    finally:
        view.terminate()
        view.wait(timeout=5)


def test_a_hundred_thousand_records(tmp_path, browser):
    """The lists are windowed and the feed bounded: 100,000 records (6,667 conns) are held to the
    last 60,000, the page says where the others are, and only rows in view are in the page."""
    recorded = [json.loads(line) for line in (ROOT / "fixtures" / "conformance-binary.jsonl").read_text().splitlines()]
    capture = tmp_path / "big.jsonl"
    total, conns = 100_000, 0
    with capture.open("w") as out:
        seq = 0
        while seq < total:
            conns += 1
            for record in recorded[: total - seq]:
                seq += 1
                out.write(json.dumps({**record, "seq": seq, "conn": f"c{conns}"}, separators=(",", ":")) + "\n")
    view = subprocess.Popen([SIOTAP, "view", str(capture), "--ui-buffer", "60000", "--ui", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    try:
        url = view.stderr.readline().split("the inspector is at ", 1)[1].split()[0]
        page = open_page(browser, url + f"#conn=c{conns}")
        expect(page.locator("#dropped")).to_have_text("40000 older records are only in the file (the last 60000 are kept here)", timeout=60_000)
        page.locator("#show-engine").check()
        expect(page.locator("#count")).to_have_text(f"{total - (conns - 1) * len(recorded)} records", timeout=60_000)
        page.locator("#conn-viewport").evaluate("v => v.scrollTop = v.scrollHeight")
        expect(page.locator("#conn-rows .conn.picked")).to_contain_text(f"c{conns}")
        assert page.locator("#conn-rows .conn").count() < 100
        page.locator(f"#conn-rows .conn.picked").click()  # all conns now
        expect(page.locator("#count")).to_have_text("60000 records")
        assert page.locator("#rows .row").count() < 100
        page.locator("#viewport").evaluate("v => v.scrollTop = v.scrollHeight")
        expect(page.locator("#rows .row").last).to_contain_text(recorded[(total - 1) % len(recorded)]["ts"][11:23])
        page.locator("body").press("j")
        expect(page.locator("#detail h3").first).to_contain_text("#40001")
        assert page.problems == []
    finally:
        view.terminate()
        view.wait(timeout=5)


HAR = r'''{"log": {"version": "1.2", "entries": [
  {"startedDateTime": "2026-11-30T10:00:00.000Z", "time": 10,
   "request": {"method": "GET", "url": "http://localhost:3000/socket.io/?EIO=4&transport=polling", "headers": [{"name": "Host", "value": "localhost:3000"}]},
   "response": {"status": 200, "headers": [], "content": {"text": "0{\"sid\":\"S1\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":20000}"}}},
  {"startedDateTime": "2026-11-30T10:00:01.000Z", "time": 5,
   "request": {"method": "POST", "url": "http://localhost:3000/socket.io/?EIO=4&transport=polling&sid=S1", "headers": [], "postData": {"text": "40"}},
   "response": {"status": 200, "headers": [], "content": {"text": "ok"}}},
  {"startedDateTime": "2026-11-30T10:00:02.000Z", "time": 0, "_resourceType": "websocket",
   "request": {"method": "GET", "url": "ws://localhost:3000/socket.io/?EIO=4&transport=websocket&sid=S1", "headers": []},
   "response": {"status": 101, "headers": [{"name": "Upgrade", "value": "websocket"}], "content": {}},
   "_webSocketMessages": [
     {"type": "send", "time": 1796032802.5, "opcode": 1, "data": "2probe"},
     {"type": "receive", "time": 1796032802.6, "opcode": 1, "data": "3probe"},
     {"type": "send", "time": 1796032802.7, "opcode": 1, "data": "5"},
     {"type": "send", "time": 1796032803.0, "opcode": 1, "data": "42[\"hi\",{\"deep\":{\"er\":{\"est\":1.50}}}]"}]}
]}}'''


def serving(command):
    """Runs a command that serves the inspector; returns it and the page's URL from its stderr."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _ in range(20):
        line = process.stderr.readline()
        if "the inspector is at " in line:
            return process, line.split("the inspector is at ", 1)[1].split()[0]
    process.kill()
    raise AssertionError("no inspector URL")


def stop(process, after_the_work=True):
    """Ctrl-C; for a command that does work first (import, demo), once it is done and the
    inspector is all that is left (before, Ctrl-C stops the work itself, as it always did)."""
    while after_the_work:
        line = process.stderr.readline()
        assert line, "the command ended before its inspector stayed"
        if "the inspector stays at" in line:
            break
    process.send_signal(2)
    try:
        assert process.wait(timeout=10) == 0
    except subprocess.TimeoutExpired:
        process.kill()  # a command that hangs must not outlive its test
        raise


def test_an_import_in_the_inspector_in_the_dark(tmp_path, browser):
    """`siotap import FILE --ui`: the imported conn (polling, then the upgrade), a deep argument
    opened by hand, and the page in the dark when the system asks for it."""
    har = tmp_path / "session.har"
    har.write_text(HAR)
    process, url = serving([SIOTAP, "import", str(har), "--quiet", "--ui", "127.0.0.1:0"])
    try:
        page = open_page(browser, url)
        page.emulate_media(color_scheme="dark")
        conn = page.locator("#conn-rows .conn").first
        expect(conn).to_contain_text("polling → websocket")
        conn.click()
        page.locator(".row .what", has_text=re.compile("^hi$")).click()
        detail = page.locator("#detail")
        expect(detail.locator(".tree .num", has_text="1.50")).to_be_hidden()  # three levels down: closed at first
        detail.locator("summary", has_text='"deep"').click()
        expect(detail.locator(".tree .num", has_text="1.50")).to_be_hidden()
        detail.locator("summary", has_text='"er"').click()
        expect(detail.locator(".tree .num", has_text="1.50")).to_be_visible()  # the number as it was written
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(22, 24, 28)", background
        assert page.problems == []
    finally:
        stop(process)


@pytest.mark.diagnosed  # refuses a token on purpose
def test_the_demo_in_the_inspector(tmp_path, browser):
    """`siotap demo --ui`: the story's conns, each with its user (the forged token's as refused),
    and the page stays until Ctrl-C."""
    process, url = serving([SIOTAP, "demo", "--record", str(tmp_path / "demo.jsonl"), "--ui", "127.0.0.1:0"])
    try:
        page = open_page(browser, url)
        users = page.locator("#conn-rows .conn span:nth-child(4)")
        expect(users).to_have_text(["alice (id 1)", "bob (id 2)", re.compile(r"^mallory \(id 666\) \(refused\)$")], timeout=20_000)
        # The forged token's refusal, diagnosed: in the Problems panel with the socket.io docs, and
        # its evidence a click away (its conn picked, its record selected).
        problem = page.locator("#problems .problem")
        expect(problem).to_have_count(1, timeout=20_000)
        expect(problem.locator("strong")).to_have_text("auth.token_bad_signature")
        assert problem.locator("a:not(.jump)").get_attribute("href").startswith("https://socket.io/docs/")
        problem.locator("a.jump").first.click()
        expect(page.locator("#conn-rows .conn.picked")).to_contain_text("mallory")
        expect(page.locator("#conn-rows .conn.picked span:nth-child(7)")).to_have_text("0 ⚑1")
        expect(page.locator("#rows .row.picked")).to_contain_text("CONNECT")
        assert page.problems == []
    finally:
        stop(process)


def read_frame(sock):
    """One server frame (unmasked) from a raw socket: (opcode, payload)."""
    def exactly(count):
        data = b""
        while len(data) < count:
            chunk = sock.recv(count - len(data))
            assert chunk, "the connection ended without a close frame"
            data += chunk
        return data
    first, second = exactly(2)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(exactly(2), "big")
    elif length == 127:
        length = int.from_bytes(exactly(8), "big")
    return first & 0x0F, exactly(length)


def test_a_page_that_stops_reading_is_let_go(tmp_path):
    """A page that never reads (a frozen tab) is not queued for without end: past the held
    records and an allowance it gets a close frame (1008, after what it had not read yet), and the
    next page is served as usual."""
    import socket as sockets

    recorded = [json.loads(line) for line in (ROOT / "fixtures" / "conformance-binary.jsonl").read_text().splitlines()]
    capture = tmp_path / "growing.jsonl"
    capture.write_text("")
    process, url = serving([SIOTAP, "view", str(capture), "--ui-buffer", "100", "--ui", "127.0.0.1:0"])
    try:
        authority = url.split("//")[1].split("/")[0]
        host, port = authority.split(":")
        live = api(url, "/live").split(authority, 1)[1]
        frozen = sockets.create_connection((host, int(port)))
        frozen.sendall(f"GET {live} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += frozen.recv(1)
        assert answer.startswith(b"HTTP/1.1 101")
        # Far more than the allowance and what the sockets' buffers hold, while the page reads nothing.
        with capture.open("w") as out:
            for seq in range(1, 90_001):
                record = recorded[seq % len(recorded)]
                out.write(json.dumps({**record, "seq": seq, "conn": f"c{seq // len(recorded)}"}, separators=(",", ":")) + "\n")
        # Every line read by the view (and so offered to the page) before the page reads anything.
        last_seq = lambda: max(requests.get(api(url, "/match?filter=")).json()["seqs"], default=0)
        assert wait_until(lambda: last_seq() == 90_000, timeout=60, interval=0.2)
        frozen.settimeout(30)
        opcode, payload = read_frame(frozen)
        while opcode != 8:
            opcode, payload = read_frame(frozen)
        assert int.from_bytes(payload[:2], "big") == 1008
        frozen.close()
        hello = requests.get(api(url, "/match?filter=")).json()
        assert len(hello["seqs"]) == 100  # the feed holds its last 100, and still answers
        assert process.poll() is None
    finally:
        stop(process, after_the_work=False)


EVIL_PAGE = """<!doctype html><script>
window.out = {live: 'pending', export: 'pending'};
const socket = new WebSocket(%(live)s);
socket.onmessage = (event) => { if (!window.out.live.startsWith('read')) window.out.live = 'read ' + event.data.slice(0, 60); };
socket.onerror = () => { if (window.out.live === 'pending') window.out.live = 'refused'; };
fetch(%(export)s, {mode: 'no-cors'}).then(() => { window.out.export = 'sent'; }, () => { window.out.export = 'failed'; });
</script>"""


def test_a_page_elsewhere_cannot_read_the_inspector(tmp_path, browser):
    """Cross-site WebSocket hijacking, in real Chromium: a page of another origin (another
    loopback port) opens the inspector's live feed, even knowing the token, and reads nothing;
    the inspector's own page, with the same script, reads the records (so the page's script would
    have seen them). A rebinding Host and a request without the token get nothing either."""
    import http.server
    import threading

    process, url = serving([SIOTAP, "view", str(ROOT / "fixtures" / "chat-websocket.jsonl"), "--ui", "127.0.0.1:0"])
    page_server = None
    try:
        live = json.dumps(api(url, "/live").replace("http://", "ws://"))
        (tmp_path / "index.html").write_text(EVIL_PAGE % {"live": live, "export": json.dumps(api(url, "/export"))})
        handler = lambda *args: http.server.SimpleHTTPRequestHandler(*args, directory=str(tmp_path))
        page_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=page_server.serve_forever, daemon=True).start()

        evil = browser.new_page()
        evil.goto(f"http://127.0.0.1:{page_server.server_address[1]}/index.html")
        evil.wait_for_function("window.out.live !== 'pending'", timeout=10_000)
        assert evil.evaluate("window.out.live") == "refused"

        # The same script on the inspector's own page reads the feed: the refusal above is the Origin's.
        own = open_page(browser, url)
        own.evaluate(EVIL_PAGE.split("<script>")[1].split("</script>")[0] % {"live": live, "export": json.dumps(api(url, "/export"))})
        own.wait_for_function("window.out.live !== 'pending'", timeout=10_000)
        assert own.evaluate("window.out.live").startswith('read {"inspector":"hello"')

        authority = url.split("//")[1].split("/")[0]
        rebound = requests.get(api(url, "/export"), headers={"Host": "evil.example:" + authority.split(":")[1]})
        assert rebound.status_code == 421 and "session" not in rebound.text
        assert requests.get(url.split("?")[0] + "export").status_code == 403
        assert requests.get(api(url, "/export")).status_code == 200
    finally:
        if page_server:
            page_server.shutdown()
        stop(process, after_the_work=False)


def test_serving_other_machines_warns_and_still_needs_the_token(tmp_path):
    command = [SIOTAP, "view", str(ROOT / "fixtures" / "chat-websocket.jsonl"), "--ui", "0.0.0.0:0", "--ui-allow-remote"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        said = [process.stderr.readline() for _ in range(2)]
        assert "warning: the inspector serves other machines" in said[0] and "SSH tunnel" in said[0], said
        url = said[1].split("the inspector is at ", 1)[1].split()[0]
        assert "?token=" in url
        port = url.split("//")[1].split("/")[0].split(":")[1]
        assert requests.get(f"http://127.0.0.1:{port}/export").status_code == 403
        assert requests.get(api(url.replace("0.0.0.0", "127.0.0.1"), "/export")).status_code == 200
    finally:
        stop(process, after_the_work=False)


def test_the_token_panel_shows_any_claim_value(tmp_path, browser):
    """Claims are whatever the token's author wrote: times that no Date holds (1e300), a string
    `exp` and an object `nbf` are shown as they are, with no exception in the page."""
    session = {"seq": 1, "ts": "2026-11-27T10:33:40.580703Z", "kind": "session", "conn": "c1",
               "url": "/socket.io/?EIO=4&transport=websocket", "eio": 4, "transport": "websocket"}
    token = {"seq": 2, "ts": "2026-11-27T10:33:40.610295Z", "kind": "jwt", "conn": "c1", "source": "auth.token", "nsp": "/",
             "header": {"alg": "HS256"}, "claims": {"sub": "1", "iat": 1e300, "exp": "0", "nbf": {"a": [1]}},
             "warnings": ["exp is \"0\", not a number of seconds (a NumericDate): servers refuse the token"]}
    capture = tmp_path / "odd-claims.jsonl"
    capture.write_text("\n".join(json.dumps(r) for r in (session, token)) + "\n")
    process, url = serving([SIOTAP, "view", str(capture), "--ui", "127.0.0.1:0"])
    try:
        page = open_page(browser, url)
        page.locator("#conn-rows .conn").first.click()
        tokens = page.locator("#tokens")
        expect(tokens).to_contain_text('expires "0" (no date)')
        expect(tokens).to_contain_text("issued 1e+300 (no date)")
        expect(tokens).to_contain_text('not before {"a":[1]} (no date)')
        expect(tokens).to_contain_text("servers refuse the token")
        assert page.problems == [], page.problems
    finally:
        stop(process, after_the_work=False)


def test_the_timeline_reads_at_a_glance(conformance, tmp_path, browser):
    """(#27 item 4, in part) Two conns live through the proxy: the merged timeline says whose each
    row is; packets show their decoded arguments (the wire text is in the detail); a conn's normal
    close is drawn plainly, not red; the conn pane is as tall as its rows and the user may resize
    it; the user column names the claim (`ada (id 42)`)."""
    proxy = Proxy(conformance.url, tmp_path, "--jwt-secret", SECRET, "--ui", "127.0.0.1:0")
    try:
        page = open_page(browser, inspector_url(proxy))
        expect(page.locator("#status")).to_have_text("live")
        session(proxy)
        session(proxy)
        expect(page.locator("#conn-rows .conn")).to_have_count(2)
        expect(page.locator("#conn-rows .conn").nth(1)).to_contain_text("closed by client", timeout=10_000)
        expect(page.locator("#conn-rows .conn").first.locator("span").nth(3)).to_have_text("ada (id 42)")
        expect(page.locator("#timeline")).to_have_class(re.compile(r"\bmulti\b"))
        expect(page.locator("#timeline-head .conn-id")).to_be_visible()
        assert {page.locator(".row:not(.head) .conn-id").nth(i).inner_text() for i in range(page.locator(".row:not(.head)").count())} >= {"c1", "c2"}
        # Decoded arguments, as captured (the 20-digit integer exact), not `421[...`.
        event = page.locator(".row", has_text="message-with-ack #").first
        args = event.locator(".args").inner_text()
        # (python-socketio escapes non-ASCII: the escape is kept, as sent.)
        assert args.endswith(f' · [{{"n":{BIG},"text":"caf\\u00e9"}}]') and '"message-with-ack"' not in args, args
        event.click()
        expect(page.locator("#detail")).to_contain_text("as sent")
        # A close packet is how a conn ends normally: not painted as an error.
        close = page.locator(".row.close-row").first
        expect(close).not_to_have_class(re.compile(r"\babnormal\b"))
        error_color = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--error').trim()")
        assert close.locator(".what").evaluate("e => getComputedStyle(e).color") != page.evaluate(
            f"(() => {{ const e = document.createElement('span'); e.style.color = '{error_color}'; document.body.append(e); const c = getComputedStyle(e).color; e.remove(); return c; }})()")
        # The pane fits its two rows (and a header), and can be resized.
        pane = page.locator("#conns")
        assert pane.evaluate("e => e.offsetHeight") <= 3 * 24 + 8
        assert pane.evaluate("e => getComputedStyle(e).resize") == "vertical"
        # Picking a conn: one conn's timeline needs no conn column.
        page.locator("#conn-rows .conn").first.click()
        expect(page.locator("#timeline")).not_to_have_class(re.compile(r"\bmulti\b"))
        assert page.problems == []
    finally:
        proxy.stop()


def test_forward_mode_hosts_and_abnormal_closes(tmp_path, browser):
    """A capture of forward mode names each conn's host in its own column; a conn that ended
    badly (its session expired unseen) is drawn red, one that closed normally is not."""
    capture = tmp_path / "forward.jsonl"
    lines = [
        {"seq": 1, "ts": "2026-12-05T10:00:00.000000Z", "kind": "session", "conn": "c1", "url": "/socket.io/?EIO=4&transport=websocket",
         "eio": 4, "transport": "websocket", "sid": "A", "headers": {"Host": "app.example", "User-Agent": "Chromium/156"},
         "target": "app.example:443", "scheme": "https",
         "tls": {"version": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256", "sni": "app.example",
                 "upstream_cert": {"subject": "CN=app.example", "issuer": "CN=Example CA", "not_after": "2027-01-01T00:00:00Z"}}},
        {"seq": 2, "ts": "2026-12-05T10:00:01.000000Z", "kind": "session", "conn": "c2", "url": "/socket.io/?EIO=4&transport=polling",
         "eio": 4, "transport": "polling", "sid": "B", "target": "chat.example:8443", "scheme": "https"},
        {"seq": 3, "ts": "2026-12-05T10:00:01.500000Z", "kind": "fault", "conn": "c1", "rule": "drop,type=ACK,dir=s2c", "action": "drop",
         "dir": "s2c", "detail": "the server's ack never reached the client"},
        {"seq": 4, "ts": "2026-12-05T10:00:01.600000Z", "kind": "jwt", "conn": "c1", "source": "auth.token", "nsp": "/",
         "header": {"alg": "HS256", "typ": "JWT"}, "claims": {"sub": "42", "name": "ada"}, "verified": False, "reason": "bad signature"},
        {"seq": 5, "ts": "2026-12-05T10:00:02.000000Z", "kind": "close", "conn": "c1", "by": "client", "reason": "close packet"},
        {"seq": 6, "ts": "2026-12-05T10:00:09.000000Z", "kind": "close", "conn": "c2", "by": "proxy",
         "reason": "no request for 3 s: the session has expired"},
    ]
    capture.write_text("".join(json.dumps(line) + "\n" for line in lines))
    process, url = serving([SIOTAP, "view", str(capture), "--ui", "127.0.0.1:0"])
    try:
        page = open_page(browser, url)
        expect(page.locator("#conn-rows .conn")).to_have_count(2)
        expect(page.locator(".conn.head .host")).to_be_visible()
        expect(page.locator("#conn-rows .conn").nth(0).locator("span").nth(1)).to_have_text("app.example:443")
        expect(page.locator("#conn-rows .conn").nth(1).locator("span").nth(1)).to_have_text("chat.example:8443")
        expect(page.locator("#conn-rows .conn").nth(1).locator("span").nth(8)).to_have_class("error")
        expect(page.locator("#conn-rows .conn").nth(0).locator("span").nth(8)).not_to_have_class("error")
        expect(page.locator(".row.close-row.abnormal")).to_have_count(1)
        expect(page.locator(".row.close-row.abnormal")).to_contain_text("no request for 3 s")
        # A session's detail: its fields, headers and TLS as tables, the record itself folded away.
        page.locator("#conn-rows .conn").first.click()
        page.locator(".row.session-row").first.click()
        detail = page.locator("#detail")
        expect(detail.locator("table.fields tr", has_text="target")).to_contain_text("app.example:443")
        expect(detail.locator("table.headers tr", has_text="User-Agent")).to_contain_text("Chromium/156")
        expect(detail.locator("table.fields tr", has_text="upstream certificate")).to_contain_text("CN=app.example")
        expect(detail.locator("details.whole")).not_to_have_attribute("open", "")
        # A fault's and a token's: fields as a table; a token's header and claims as trees.
        page.locator(".row.fault-row").first.click()
        expect(detail.locator("table.fields tr", has_text="rule")).to_contain_text("drop,type=ACK,dir=s2c")
        expect(detail.locator("table.fields tr", has_text="detail")).to_contain_text("never reached the client")
        page.locator(".row.jwt-row").first.click()
        expect(detail.locator("table.fields tr", has_text="reason")).to_contain_text("bad signature")
        expect(detail.locator(".tree").first).to_contain_text('"alg"')
        expect(detail.locator(".tree").nth(1)).to_contain_text('"name"')
        assert page.problems == []
    finally:
        process.terminate()
        process.wait(timeout=5)
