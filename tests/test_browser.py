"""index.html in a real headless browser (Debian's chromium), driven over the DevTools protocol.

No new dependency: Chromium's ``--remote-debugging-pipe`` reads NUL-terminated JSON commands on
fd 3 and writes replies and events on fd 4. The page must load without errors, make no network
request, show one comparison row per scenario, and render every image.

Chromium missing: the test skips with the reason, unless ``SALESOPS_REQUIRE_BROWSER`` is set (CI),
where a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from test_report import XSS_REP, make_fake_batch

from salesops_models.workflow.report import build_index

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-pipe",
]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class DevTools:
    """A minimal Chrome DevTools protocol client over the two pipes."""

    def __init__(self, binary: str, profile: Path):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire() -> None:  # in the child: our pipes become fds 3 (commands) and 4 (replies)
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire,  # noqa: PLW1509 - single-threaded test process
            pass_fds=(3, 4, to_chrome_r, from_chrome_w),
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from chromium")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise ConnectionError("chromium closed the pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(
        self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30
    ) -> dict:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 30) -> dict:
        for e in self.events:
            if e.get("method") == event:
                return e
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_message(deadline)
            self.events.append(msg)
            if msg.get("method") == event:
                return msg

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (OSError, RuntimeError, TimeoutError, ConnectionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def page_facts(binary: str, profile: Path, page: Path, expression: str) -> tuple[DevTools, dict[str, Any]]:
    """Open ``page`` in headless chromium, wait for its load event, evaluate ``expression`` (JSON
    text) in it; return the closed session (its ``events``) and the decoded value."""
    tools = DevTools(binary, profile)
    try:
        target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            tools.call(f"{domain}.enable", session=session)
        tools.call("Page.navigate", {"url": page.as_uri()}, session=session)
        tools.wait_for("Page.loadEventFired", timeout=60)
        result = tools.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session
        )
        return tools, json.loads(result["result"]["value"])
    finally:
        tools.close()


PAGE_FACTS = """JSON.stringify({
  rows: [...document.querySelectorAll('#comparison tbody tr')].map(r => r.dataset.scenario),
  images: [...document.images].map(i => ({complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,
                                          data: i.src.startsWith('data:image/png;base64,')})),
  scripts: document.scripts.length,
  xssText: document.body.innerText.includes(%s),
  title: document.title
})"""


def test_index_renders_in_headless_chromium(tmp_path):
    binary = _chromium()
    if binary is None:
        if os.environ.get("SALESOPS_REQUIRE_BROWSER"):
            pytest.fail(
                "SALESOPS_REQUIRE_BROWSER is set but chromium is not installed (apt-get install chromium)"
            )
        pytest.skip(
            "chromium not installed (apt-get install -y chromium chromium-driver); .ci/run installs it"
        )
    index = build_index(make_fake_batch(tmp_path))
    tools, facts = page_facts(binary, tmp_path / "profile", index, PAGE_FACTS % json.dumps(XSS_REP))

    methods = [e.get("method") for e in tools.events]
    errors = [e for e in tools.events if e.get("method") == "Runtime.exceptionThrown"]
    errors += [
        e
        for e in tools.events
        if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"
    ]
    errors += [
        e
        for e in tools.events
        if e.get("method") in {"Network.loadingFailed", "Page.javascriptDialogOpening"}
    ]
    assert errors == [], errors
    requests = [
        e["params"]["request"]["url"] for e in tools.events if e.get("method") == "Network.requestWillBeSent"
    ]
    assert requests and all(u.startswith(("file:", "data:")) for u in requests), requests
    assert "Page.loadEventFired" in methods
    assert facts["rows"] == ["base", "variant", "bad"], "one comparison row per scenario"
    assert len(facts["images"]) == 5
    for img in facts["images"]:
        assert img["complete"] and img["data"] and img["w"] > 100 and img["h"] > 100, img
    assert facts["scripts"] == 0
    assert facts["xssText"], "the rep called <script>alert(1)</script> shows as text"
    assert facts["title"] == "Scenario batch batch-1"
