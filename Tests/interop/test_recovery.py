"""Connection-state recovery (socket.io 4.6+), with the official JavaScript client 4.8.1 in
Chromium against `siotap serve --recovery`, directly and through `siotap proxy`: A's transport is
closed under it (`socket.io.engine.close()`), B sends chat messages meanwhile, and A, back,
gets them, with `socket.recovered` true and its old id."""
import json
import shutil
import subprocess

import pytest

from conftest import ROOT, SECRET, SIOTAP, Proxy, Server, wait_until
from test_import import Tcpdump, every_field, siotap_import
from test_chat_interop import token


@pytest.fixture(scope="module")
def recovering_chat():
    server = Server("--app", "chat", "--jwt-secret", SECRET, "--cors", "*", "--recovery", "60000",
                    "--ping-interval", "5000", "--ping-timeout", "5000")
    yield server
    server.stop()


STORY = """async ([url, transports, tokens]) => {
    const open = (token) => io(url, { transports, forceNew: true, auth: { token }, reconnectionDelay: 500, reconnectionDelayMax: 500 });
    const next = (socket, event, ms = 8000) => new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no " + event)), ms);
        socket.once(event, (...args) => { clearTimeout(timer); resolve(args); });
    });
    const a = open(tokens[0]);
    await next(a, "connect");
    const b = open(tokens[1]);
    await next(b, "connect");
    const firstId = a.id;
    // A gets an event (and its offset) before it goes.
    const answered = next(a, "chat response");
    a.emit("message", { message: "before", sender: "a" });
    await answered;
    const seen = [];
    a.on("message", (payload) => seen.push(payload.message));
    const gone = next(a, "disconnect");
    a.io.engine.close();
    const [reason] = await gone;
    b.emit("message", { message: "while away 1", sender: "b" });
    b.emit("message", { message: "while away 2", sender: "b" });
    await next(a, "connect");
    const deadline = Date.now() + 3000;
    while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const result = { reason, recovered: a.recovered, sameId: a.id === firstId, seen };
    a.disconnect();
    b.disconnect();
    return result;
}"""


@pytest.mark.parametrize("via", ["direct", "proxy"])
@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_the_js_client_recovers_its_session(recovering_chat, js_browser, tmp_path, via, transport):
    proxy = Proxy(recovering_chat.url, tmp_path) if via == "proxy" else None
    # The hop between the proxy and the server, for `siotap import`.
    dump = Tcpdump(recovering_chat.port, tmp_path / "hop.pcap") if proxy else None
    try:
        page = js_browser.new_page()
        page.goto(js_browser.page_url)
        url = proxy.url if proxy else recovering_chat.url
        result = page.evaluate(STORY, [url, [transport], [token(1, name="a"), token(2, name="b")]])
        page.close()
        assert result == {"reason": "forced close", "recovered": True, "sameId": True, "seen": ["while away 1", "while away 2"]}
        if proxy:
            def settled():
                records = proxy.records()
                conns = {r["conn"] for r in records if r["kind"] == "session"}
                return len(conns) == 3 and conns <= {r["conn"] for r in records if r["kind"] == "close"}
            assert wait_until(settled, timeout=10), proxy.records()
            records = proxy.records()
            connects = [r for r in records if r["kind"] == "packet" and r["type"] == "CONNECT"]
            asked = [c for c in connects if c["dir"] == "c2s" and "pid" in (c.get("data") or {})]
            assert len(asked) == 1, connects
            [answer] = [c for c in connects if c["dir"] == "s2c" and c["conn"] == asked[0]["conn"]]
            assert answer["recovered"] is True and answer["data"]["pid"] == asked[0]["data"]["pid"]
            first = next(c for c in connects if c["dir"] == "s2c" and c["data"]["pid"] == asked[0]["data"]["pid"] and c["conn"] != answer["conn"])
            assert asked[0]["recovers"] == first["conn"]
            # An import of the same hop links the recovery the same way (one RecoveryLinks for both
            # recorders): replay of an imported capture relies on it as much.
            dump.stop()
            dump = None
            result, imported = siotap_import(tmp_path / "hop.pcap")
            assert result.returncode == 0, result.stderr
            imported_connects = [r for r in imported if r["kind"] == "packet" and r["type"] == "CONNECT"]
            [imported_ask] = [c for c in imported_connects if c["dir"] == "c2s" and "pid" in (c.get("data") or {})]
            imported_first = next(c for c in imported_connects if c["dir"] == "s2c" and c["data"]["pid"] == imported_ask["data"]["pid"]
                                  and c["conn"] != imported_ask["conn"])
            assert imported_ask["recovers"] == imported_first["conn"], imported_connects
            # The same records, field by field (the recorder is one): on polling too, where a
            # poll still out at the close is answered before the close, and a poll the proxy cuts
            # when its client goes ends the conn in both (which end came first can differ by hop).
            assert every_field(imported, close_reasons=transport == "websocket") == every_field(records, close_reasons=transport == "websocket")
            # The capture replays against the built-in server (recovery on, as the capture's was):
            # the recovery happens again, offsets and pids compared as stand-ins.
            capture = tmp_path / "recovery.jsonl"
            shutil.copy(proxy.capture, capture)
            replayed = subprocess.run([SIOTAP, "replay", str(capture), "--app", "chat", "--jwt-secret", SECRET, "--json"],
                                      capture_output=True, text=True, timeout=60)
            report = json.loads(replayed.stdout.splitlines()[0])
            assert replayed.returncode == 0, json.dumps(report, indent=1)
            assert sum(c["matched"] for c in report["connections"]) >= 6
    finally:
        if proxy:
            proxy.stop()
        if dump:
            dump.stop()
