"""A HAR of a real browser session, made the way Chrome's DevTools make theirs: headless Chromium
driven over the DevTools protocol (CDP, through aiohttp: no Playwright needed), its Network events
(requests, response bodies, WebSocket frames) written in the DevTools export shape, with
`_webSocketMessages` (`type`, `time`, `opcode`, `data`)."""
import asyncio
import json
import subprocess
import tempfile

import aiohttp


async def record_har(chromium, url, done, timeout=40):
    """Opens `url` in a fresh headless Chromium, waits until `done()` says the page is through,
    and returns the session as a HAR (a dict)."""
    profile = tempfile.mkdtemp(prefix="siotap-cdp-")
    browser = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        endpoint = None
        for _ in range(200):
            line = browser.stderr.readline()
            if "DevTools listening on" in line:
                endpoint = line.split("listening on ")[1].strip()
                break
        assert endpoint, "Chromium did not say where its DevTools listen"
        async with aiohttp.ClientSession() as http, http.ws_connect(endpoint, max_msg_size=0) as cdp:
            return await asyncio.wait_for(_drive(cdp, url, done), timeout)
    finally:
        browser.kill()
        browser.wait(10)


async def _drive(cdp, url, done):
    ids = iter(range(1, 1 << 30))
    waiting = {}
    requests, sockets, order = {}, {}, []

    async def call(method, params=None, session=None):
        message = {"id": next(ids), "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        future = asyncio.get_running_loop().create_future()
        waiting[message["id"]] = future
        await cdp.send_str(json.dumps(message))
        return await future

    async def reader():
        async for message in cdp:
            data = json.loads(message.data)
            if "id" in data:
                future = waiting.pop(data["id"], None)
                if future and not future.done():
                    future.set_result(data.get("result", {}))
                continue
            handle(data.get("method"), data.get("params", {}))

    def handle(method, p):
        if method == "Network.requestWillBeSent":
            request = p["request"]
            requests[p["requestId"]] = {"wall": p["wallTime"], "monotonic": p["timestamp"], "request": request, "response": None,
                                        "end": None, "type": p.get("type", "")}
            order.append(p["requestId"])
        elif method == "Network.responseReceived" and p["requestId"] in requests:
            requests[p["requestId"]]["response"] = p["response"]
        elif method == "Network.loadingFinished" and p["requestId"] in requests:
            requests[p["requestId"]]["end"] = p["timestamp"]
        elif method == "Network.webSocketCreated":
            sockets[p["requestId"]] = {"url": p["url"], "messages": [], "request": None, "response": None, "wall": None, "monotonic": None}
            order.append(p["requestId"])
        elif method == "Network.webSocketWillSendHandshakeRequest":
            socket = sockets.setdefault(p["requestId"], {"messages": []})
            socket.update(request=p["request"], wall=p["wallTime"], monotonic=p["timestamp"])
        elif method == "Network.webSocketHandshakeResponseReceived":
            sockets[p["requestId"]]["response"] = p["response"]
        elif method in ("Network.webSocketFrameSent", "Network.webSocketFrameReceived"):
            socket = sockets[p["requestId"]]
            frame = p["response"]
            socket["messages"].append({"type": "send" if method.endswith("Sent") else "receive",
                                       "time": socket["wall"] + (p["timestamp"] - socket["monotonic"]),
                                       "opcode": frame["opcode"], "data": frame["payloadData"]})

    reading = asyncio.create_task(reader())
    target = await call("Target.createTarget", {"url": "about:blank"})
    session = (await call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}))["sessionId"]
    await call("Network.enable", {}, session)
    await call("Page.navigate", {"url": url}, session)
    while not done():
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    entries = []
    for request_id in order:
        if request_id in sockets:
            socket = sockets[request_id]
            response = socket["response"] or {"status": 0, "headers": {}}
            entries.append({
                "startedDateTime": _iso(socket["wall"]), "time": 0, "_resourceType": "websocket",
                "request": {"method": "GET", "url": socket["url"], "httpVersion": "HTTP/1.1",
                            "headers": _pairs(socket["request"]["headers"] if socket["request"] else {})},
                "response": {"status": response["status"], "statusText": response.get("statusText", ""), "httpVersion": "HTTP/1.1",
                             "headers": _pairs(response["headers"]), "content": {"size": 0, "mimeType": "x-unknown"}},
                "_webSocketMessages": socket["messages"],
            })
            continue
        item = requests[request_id]
        if item["response"] is None or item["request"]["url"].startswith("data:"):
            continue
        body = await call("Network.getResponseBody", {"requestId": request_id}, session)
        request = item["request"]
        duration = ((item["end"] or item["monotonic"]) - item["monotonic"]) * 1000
        content = {"size": len(body.get("body", "")), "mimeType": item["response"].get("mimeType", ""), "text": body.get("body", "")}
        if body.get("base64Encoded"):
            content["encoding"] = "base64"
        entry = {
            "startedDateTime": _iso(item["wall"]), "time": duration, "_resourceType": item["type"].lower(),
            "request": {"method": request["method"], "url": request["url"], "httpVersion": "HTTP/1.1", "headers": _pairs(request["headers"])},
            "response": {"status": item["response"]["status"], "statusText": item["response"].get("statusText", ""),
                         "httpVersion": "HTTP/1.1", "headers": _pairs(item["response"]["headers"]), "content": content},
        }
        if "postData" in request:
            entry["request"]["postData"] = {"mimeType": request["headers"].get("Content-Type", "text/plain"), "text": request["postData"]}
        entries.append(entry)
    reading.cancel()
    return {"log": {"version": "1.2", "creator": {"name": "siotap tests (CDP)", "version": "1"}, "pages": [], "entries": entries}}


def _pairs(headers):
    return [{"name": name, "value": value} for name, value in headers.items()]


def _iso(seconds):
    import datetime
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
