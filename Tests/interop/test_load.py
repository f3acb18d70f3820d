"""`siotap load` (#30): captures played as many virtual users against servers siotap did not write
(python-socketio's chat and conformance apps) and against the built-in ones. The counts must be
users × the capture's, each user's re-minted token must pass the server's check, and --fail-if
must trip on a server slowed on purpose."""
import json
import subprocess

import pytest

from conftest import ROOT, SECRET, SIOTAP, Proxy, Server, python_server

FIXTURES = ROOT / "fixtures"


def load(capture, target, *args, timeout=120):
    """(exit code, the --json object, stderr) of a `siotap load` run."""
    result = subprocess.run([SIOTAP, "load", str(FIXTURES / capture), "--target", target, "--json", *args],
                            capture_output=True, text=True, timeout=timeout)
    output = json.loads(result.stdout) if result.stdout.strip() else None
    return result.returncode, output, result.stderr


@pytest.fixture(scope="module", params=["built-in", "python-socketio"])
def chat_server(request):
    server = (Server("--app", "chat", "--jwt-secret", SECRET, "--ping-interval", "2000", "--ping-timeout", "2000")
              if request.param == "built-in" else python_server("chat"))
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["built-in", "python-socketio"])
def conformance_server(request):
    server = Server("--app", "conformance") if request.param == "built-in" else python_server("conformance")
    yield server
    server.stop()


def test_the_chat_as_200_users_with_their_own_tokens(chat_server):
    """The chat capture's two conns (alice chats and joins a room, bob notifies her and leaves) as
    200 users, each with a token re-minted for its own id: the server checks every one."""
    code, result, stderr = load("chat-websocket.jsonl", chat_server.url, "--users", "200", "--ramp", "2s",
                                "--jwt-secret", SECRET, "--claim", "id={user}")
    assert code == 0, stderr
    assert result["users"] == {"started": 200, "peak": result["users"]["peak"], "completed": 200}
    assert result["errors"] == {}, result
    # Each alice is answered on her own: 100 of each, timed from the packet that asked.
    assert result["events"]["chat response"]["count"] == 100
    assert result["events"]["roomJoined"]["count"] == 100
    assert result["received"]["chat response"] == 100 and result["received"]["roomJoined"] == 100
    assert result["connect_ms"]["count"] == 200
    assert 0 < result["connect_ms"]["p50_ms"] <= result["connect_ms"]["p99_ms"] <= result["connect_ms"]["max_ms"]
    assert result["memory"]["peak_rss_mb"] > 0


@pytest.mark.parametrize("capture", ["chat-polling.jsonl", "chat-upgrade.jsonl"])
def test_the_chat_on_long_polling_and_the_upgrade(chat_server, capture, tmp_path):
    """Conns recorded on long-polling, and on polling then the upgrade, are played on them: each
    user's packets go over the transports its conn used (a recording proxy in between says which),
    and every one is answered."""
    proxy = Proxy(chat_server.url, tmp_path)
    try:
        code, result, stderr = load(capture, proxy.url, "--users", "40", "--ramp", "1s",
                                    "--jwt-secret", SECRET, "--claim", "id={user}")
    finally:
        proxy.stop()
    assert code == 0, stderr
    events = [r for r in proxy.records() if r["kind"] == "packet" and r["dir"] == "c2s" and r["type"] == "EVENT"]
    transports = {r["transport"] for r in events}
    assert transports == ({"websocket"} if "upgrade" in capture else {"polling"}), transports
    if "upgrade" in capture:
        probes = [r for r in proxy.records() if r["kind"] == "engine" and r["type"] == "upgrade"]
        assert len(probes) == 40, len(probes)
    assert result["errors"] == {}, result
    assert result["users"]["completed"] == 40
    assert result["events"]["chat response"]["count"] == 20
    assert result["events"]["roomJoined"]["count"] == 20
    assert result["connect_ms"]["count"] == 40


def test_engine_io_3_on_long_polling(tmp_path):
    """Engine.IO 3 on long-polling (the client pings, payloads framed the v3 way) against
    python-socketio 4: the chat-eio3 capture with its upgrade taken out."""
    lines = [line for line in (FIXTURES / "chat-eio3.jsonl").read_text().splitlines()
             if not ('"kind":"engine"' in line and '"transport":"websocket"' in line)]
    capture = tmp_path / "eio3-polling.jsonl"
    capture.write_text("\n".join(lines).replace('"transport":"websocket"', '"transport":"polling"') + "\n")
    server = python_server("chat", generation=4)
    try:
        result = subprocess.run([SIOTAP, "load", str(capture), "--target", server.url, "--json", "--users", "20", "--ramp", "1s",
                                 "--jwt-secret", SECRET],
                                capture_output=True, text=True, timeout=120)
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["users"]["completed"] == 20 and output["connect_ms"]["count"] == 20, output
    # Every user's own answers came over polling (notify names user 4: the others wait in vain, as recorded).
    assert output["events"]["chat response"]["count"] == 20 and output["events"]["roomJoined"]["count"] == 20
    assert set(output["errors"]) <= {"event_timeout"}, output


def test_tokens_the_server_refuses_are_counted(chat_server):
    code, result, stderr = load("chat-websocket.jsonl", chat_server.url, "--users", "20", "--jwt-secret", "not-the-servers-secret-at-all!!")
    assert code == 0, stderr
    assert result["errors"] == {"refused": 20}
    assert result["users"]["completed"] == 0


def test_acks_as_many_as_users_times_the_capture(conformance_server):
    """conformance-binary.jsonl: one conn, two acked emits with binary arguments."""
    code, result, stderr = load("conformance-binary.jsonl", conformance_server.url, "--users", "200", "--ramp", "1s", "--speed", "4")
    assert code == 0, stderr
    assert result["errors"] == {}, result
    assert result["acks"]["message-with-ack"]["count"] == 400
    assert result["users"]["completed"] == 200
    # Which side was busier: the server's own process is found on this machine and measured.
    cpu = result["cpu"]
    assert cpu["server_pid"] == conformance_server.process.pid, cpu
    assert cpu["load_cores"] > 0 and cpu["server_cores"] > 0 and cpu["busier"] in ("server", "load")
    assert cpu["busier"] == ("server" if cpu["server_cores"] >= cpu["load_cores"] else "load")


def test_loop_plays_the_conn_again_until_the_time_is_up(conformance_server):
    """--loop: each user starts its conn again when it ends; --duration stops them where they are,
    with nothing counted against them."""
    code, result, stderr = load("conformance-binary.jsonl", conformance_server.url, "--users", "5", "--loop", "--duration", "2s", "--speed", "4")
    assert code == 0, stderr
    assert result["errors"] == {}, result
    users = result["users"]
    assert users["started"] > 10, users
    assert users["started"] - 5 <= users["completed"] <= users["started"], users
    assert result["acks"]["message-with-ack"]["count"] >= 2 * users["completed"]


def test_fail_if_trips_on_a_slow_server(tmp_path):
    server = Server("--app", "conformance")
    proxy = Proxy(server.url, tmp_path, "--fault", "delay=300ms,type=ACK,dir=s2c")
    try:
        code, result, stderr = load("conformance-binary.jsonl", proxy.url, "--users", "10", "--fail-if", "p99>200ms,errors>0")
        assert code == 1, stderr
        assert "--fail-if broken: p99>200ms (was 3" in stderr
        assert result["failed"] and result["failed"][0].startswith("p99>200ms")
        assert result["acks"]["message-with-ack"]["max_ms"] >= 300  # the ACKs held (not the BINARY_ACKs)
        # The same against the server itself holds.
        code, result, stderr = load("conformance-binary.jsonl", server.url, "--users", "10", "--fail-if", "p99>200ms,errors>0")
        assert code == 0, stderr
        assert result["failed"] == []
    finally:
        proxy.stop()
        server.stop()


def test_load_says_what_is_wrong():
    assert load("chat-websocket.jsonl", "http://127.0.0.1:9", "--users", "1")[0] == 3
    for args in (["--users", "0"], ["--loop"], ["--claim", "id={user}"], ["--fail-if", "p98>1ms"], ["--pick", "colour=red"]):
        code, _, stderr = load("chat-websocket.jsonl", "http://127.0.0.1:9", *args)
        assert code == 2, (args, stderr)
    # A "log" that never ends is refused after 64 MB, not read into memory whole.
    merged = subprocess.run([SIOTAP, "load", "merge", "/dev/zero"], capture_output=True, text=True, timeout=30)
    assert merged.returncode == 2 and "larger than 64 MB" in merged.stderr, merged.stderr


def test_three_workers_merge_into_one_run(conformance_server, tmp_path):
    """Three workers as processes, each a third of 60 users; their .hlog files merged equal one
    process playing all 60, and HdrHistogram's own Python library reads what they wrote."""
    from hdrh.histogram import HdrHistogram

    workers = [subprocess.Popen([SIOTAP, "load", str(FIXTURES / "conformance-binary.jsonl"), "--target", conformance_server.url,
                                 "--users", "60", "--ramp", "1s", "--workers", "3", "--worker-index", str(index),
                                 "--hlog", str(tmp_path / f"w{index}.hlog"), "--quiet"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for index in range(3)]
    for worker in workers:
        assert worker.wait(timeout=120) == 0, worker.stderr.read()
    merged = subprocess.run([SIOTAP, "load", "merge", *(str(tmp_path / f"w{index}.hlog") for index in range(3)), "--json"],
                            capture_output=True, text=True, timeout=30)
    assert merged.returncode == 0, merged.stderr
    merged = json.loads(merged.stdout)
    code, one, stderr = load("conformance-binary.jsonl", conformance_server.url, "--users", "60", "--ramp", "1s",
                             "--hlog", str(tmp_path / "one.hlog"))
    assert code == 0, stderr
    for result in (merged, one):
        assert result["users"]["started"] == 60 and result["users"]["completed"] == 60 and result["errors"] == {}
    assert merged["acks"]["message-with-ack"]["count"] == one["acks"]["message-with-ack"]["count"] == 120
    assert {name: value["count"] for name, value in merged["events"].items()} == {name: value["count"] for name, value in one["events"].items()}
    assert merged["received"] == one["received"]
    # The reference implementation reads siotap's histograms, and finds what siotap reported.
    for line in (tmp_path / "one.hlog").read_text().splitlines():
        if line.startswith("Tag=ack:message-with-ack,"):
            histogram = HdrHistogram.decode(line.rsplit(",", 1)[1])
            assert histogram.get_total_count() == 120
            assert abs(histogram.get_value_at_percentile(50) / 1000 - one["acks"]["message-with-ack"]["p50_ms"]) < 0.01
    broken = subprocess.run([SIOTAP, "load", "merge", str(tmp_path / "w0.hlog"), "--fail-if", "max>1us"], capture_output=True, text=True, timeout=30)
    assert broken.returncode == 1 and "max>1us (was" in broken.stderr
    (tmp_path / "bad.hlog").write_text("Tag=x,0,1,2,HISTF\n")
    assert subprocess.run([SIOTAP, "load", "merge", str(tmp_path / "bad.hlog")], capture_output=True, text=True, timeout=30).returncode == 2


def test_the_html_report_draws_its_plots_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    server = Server("--app", "conformance")
    try:
        report = tmp_path / "report.html"
        code, result, stderr = load("conformance-binary.jsonl", server.url, "--users", "300", "--rate", "100", "--speed", "0.05",
                                    "--report", str(report))
        assert code == 0, stderr
        assert result["users"]["completed"] == 300 and result["errors"] == {}
    finally:
        server.stop()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = chromium.new_page()
        problems, requests = [], []
        page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("request", lambda request: requests.append(request.url))
        page.goto(report.as_uri())
        # Four plots, five lines (p50 and p99 share one), each with points over the run's seconds.
        assert page.locator("svg").count() == 4
        lines = page.locator("svg polyline")
        assert lines.count() == 5
        for index in range(5):
            assert len(lines.nth(index).get_attribute("points").split()) >= 2
        assert "300 users started, 300 played to the end" in page.locator("body").inner_text()
        assert page.locator("table tr", has_text="ack of message-with-ack").locator("td").first.inner_text() == "600"
        assert problems == [] and requests == [report.as_uri()], (problems, requests)
        chromium.close()
