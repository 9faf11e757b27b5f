"""A real browser on the generated demo page: live events, reconnection, line-by-line fetch.

Headless Chromium (the system's, driven by Playwright) opens ``/``, which connects to every
endpoint. The page's stream URLs get short counts and intervals through request routing;
nothing else is changed. Mid-stream, the gunicorn worker serving the page is killed: the
master starts a new one, EventSource reconnects by itself with ``Last-Event-ID``, and the
page must end with every event exactly once, in order.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

import pytest

from .conftest import SERVERS, VIAS, Servers, requires_chromium, requires_nginx
from .stack import Process

pytestmark = [pytest.mark.deploy, requires_nginx, requires_chromium]

EVENTS = 10
LINES = 5
QUERIES = {
    "/events": f"count={EVENTS}&interval=0.4&topic=browser",
    "/lines": f"count={LINES}&interval=0.3&topic=browser",
    "/log": f"count={LINES}&interval=0.3&topic=browser",
}


@dataclass
class PageStack:
    app: Process
    proxy: Process

    def port(self, via: str) -> int:
        return {"direct": self.app.port, "nginx": self.proxy.port}[via]


@pytest.fixture(scope="module", params=SERVERS)
def page_stack(request: pytest.FixtureRequest, servers: Servers) -> PageStack:
    server: str = request.param
    # One worker: killing it drops every stream of the page at once.
    app = servers.gunicorn(
        server,
        f"gunicorn-{server}-browser",
        env={"FLASK_STREAM_RETRY_MS": "300"},
        extra_args=["--workers", "1"],
    )
    proxy = servers.nginx(server, f"nginx-{server}-browser", app)
    return PageStack(app, proxy)


def items(page: object, section: str) -> list[str]:
    return page.locator(f"#{section} .events li").all_inner_texts()  # type: ignore[attr-defined]


def status(page: object, section: str) -> str:
    return page.locator(f"#{section} .status").inner_text()  # type: ignore[attr-defined]


@pytest.mark.parametrize("via", VIAS)
def test_demo_page_streams_live_and_resumes_after_a_dropped_connection(
    browser: object, page_stack: PageStack, via: str
) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()

    def shorten(route: object) -> None:
        url: str = route.request.url  # type: ignore[attr-defined]
        path = "/" + url.split("/", 3)[3].split("?", 1)[0]
        route.continue_(url=f"{url}?{QUERIES[path]}")  # type: ignore[attr-defined]

    for path in QUERIES:
        page.route(f"**{path}", shorten)
    log_before = len(page_stack.app.log())
    try:
        page.goto(f"http://127.0.0.1:{page_stack.port(via)}/", timeout=10_000)

        # Live: the first events are on the page while their streams are still open.
        page.wait_for_function(
            """() => ['events', 'lines', 'log'].every((id) =>
                document.querySelector(`#${id} .events li`) &&
                document.querySelector(`#${id} .status`).textContent === 'open')""",
            timeout=10_000,
        )
        assert 1 <= len(items(page, "events")) < EVENTS

        # NDJSON and text through the fetch() reader: one item per line, in order.
        page.wait_for_function(
            """() => ['lines', 'log'].every((id) =>
                document.querySelector(`#${id} .status`).textContent === 'done')""",
            timeout=10_000,
        )
        lines = items(page, "lines")
        assert [line.count('"seq":') for line in lines] == [1] * LINES
        assert [f'"seq":{n},' in line for n, line in enumerate(lines)] == [True] * LINES
        assert items(page, "log") == [f"browser {n}/{LINES}" for n in range(1, LINES + 1)]

        # Drop the SSE connection mid-stream: kill the worker; gunicorn's master replaces it.
        page.wait_for_function(
            "() => document.querySelectorAll('#events .events li').length >= 3", timeout=10_000
        )
        assert status(page, "events") == "open"
        (worker,) = page_stack.app.children()
        os.kill(worker, signal.SIGKILL)

        page.wait_for_function(
            "() => document.querySelector('#events .status').textContent === 'done'",
            timeout=20_000,
        )
        shown = items(page, "events")
        assert [item.split(" ", 1)[0] for item in shown] == [f"#{n}" for n in range(EVENTS)]
        # The new worker served only the rest of the stream, from the Last-Event-ID the
        # browser sent: without it the stream would restart at #0 and repeat events.
        resumed = page_stack.app.wait_for_log(
            r"/events closed after (\d+) of (\d+) events", timeout=5, since=log_before
        )
        assert resumed.group(1) == resumed.group(2)
        assert 1 <= int(resumed.group(2)) <= EVENTS - 3
        assert page_stack.app.children() != [worker]
    finally:
        context.close()
