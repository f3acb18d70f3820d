"""Takes docs/inspector.png: the inspector on `siotap demo`'s session (the seed guide's chat:
alice and bob chat, mallory's forged token is refused), in Debian's Chromium.

    .venv-peers/bin/python scripts/inspector-screenshot.py [SIOTAP_BINARY]
"""
import pathlib
import subprocess
import sys
import tempfile
import time

from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[1]
binary = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / ".build" / "debug" / "siotap")

with tempfile.TemporaryDirectory() as folder:
    demo = subprocess.Popen([binary, "demo", "--ui", "127.0.0.1:0", "--record", "demo.jsonl"],
                            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in demo.stderr:
            if "the inspector is at " in line:
                url = line.split("the inspector is at ", 1)[1].split()[0]
            if "wrote" in line and url:
                break
        assert url, "siotap demo printed no inspector URL"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 760}, device_scale_factor=1)
            page.goto(url)
            page.locator("#conn-rows .conn").first.wait_for()
            page.locator("#conn-rows .conn").first.click()
            page.locator(".row", has_text="message").first.click()
            time.sleep(0.5)
            page.screenshot(path=str(ROOT / "docs" / "inspector.png"))
            browser.close()
    finally:
        demo.terminate()
        demo.wait(timeout=10)
print("docs/inspector.png")
