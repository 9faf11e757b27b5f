"""The demo page of a project with channels, in headless Chromium on real gunicorn.

One project: a channel in SSE and one in NDJSON, a ticks endpoint in NDJSON and one in text.
It runs twice, as its README says: with the in-process broker (one worker), and with Redis
(two workers) for the restart. The page must load without a console error, show every event
a channel carries (named ones and ``reset`` included), resume both channel cards exactly once
across a gunicorn restart, and say so when a ticks stream is ended early.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from harness.redis_stack import RedisServer
from harness.stack import (
    DEFAULT_ENDPOINTS,
    Process,
    Project,
    render_project,
    restart_gracefully,
    start_gunicorn,
)

from .conftest import Servers, requires_chromium, requires_redis

pytestmark = [pytest.mark.deploy, requires_chromium, requires_redis]

TOKEN = "demo-page-publish-token"
# Two channels (SSE, NDJSON), and two ticks endpoints: lines (NDJSON) and log (text).
ENDPOINTS = (
    *(
        {
            "name": name,
            "path": f"/{name}",
            "style": style,
            "format": fmt,
            "session": fmt == "sse",
            "source": "channel",
        }
        for name, style, fmt in (("news", "decorator", "sse"), ("feed", "wrapper", "ndjson"))
    ),
    *DEFAULT_ENDPOINTS[1:],
)
ENV = {"FLASK_STREAM_PUBLISH_TOKEN": TOKEN, "FLASK_STREAM_RETRY_MS": "300"}


@dataclass
class DemoStack:
    project: Project
    memory: Process
    redis: Process
    full: Process
    """One stream at most: a second one is refused with a 503 and Retry-After."""


@pytest.fixture(scope="module")
def demo_stack(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    project = render_project(servers.root / "demo-page", endpoints=ENDPOINTS)
    redis = RedisServer(tmp_path_factory.mktemp("demo-redis"))
    redis.start()
    try:
        memory = start_gunicorn(project, log_path=servers.root / "demo-memory.log", env=ENV)
        servers.started.append(memory)
        shared = start_gunicorn(
            project,
            log_path=servers.root / "demo-redis.log",
            env={**ENV, "FLASK_STREAM_BROKER_URL": redis.url},
            extra_args=["--graceful-timeout", "5"],
        )
        servers.started.append(shared)
        full = start_gunicorn(
            project,
            log_path=servers.root / "demo-full.log",
            # Quick heartbeats: a stream whose client left frees its place within a second.
            env={**ENV, "FLASK_STREAM_MAX_OPEN": "1", "FLASK_STREAM_HEARTBEAT_SECONDS": "0.3"},
        )
        servers.started.append(full)
        yield DemoStack(project, memory, shared, full)
    finally:
        redis.stop()


def items(page: object, section: str) -> list[str]:
    return page.locator(f"#{section} .events li").all_inner_texts()  # type: ignore[attr-defined]


def status(page: object, section: str) -> str:
    return page.locator(f"#{section} .status").inner_text()  # type: ignore[attr-defined]


def wait_for_items(page: object, section: str, count: int, timeout: float = 20_000) -> list[str]:
    page.wait_for_function(  # type: ignore[attr-defined]
        f"() => document.querySelectorAll('#{section} .events li').length >= {count}",
        timeout=timeout,
    )
    return items(page, section)


def connect(page: object, *sections: str) -> None:
    for section in sections:
        page.locator(f"#{section} > p button").click()  # type: ignore[attr-defined]
    for section in sections:
        page.wait_for_function(  # type: ignore[attr-defined]
            f"() => document.querySelector('#{section} .status').textContent === 'open'",
            timeout=10_000,
        )


def publish(page: object, section: str, data: str, event: str = "") -> None:
    """Publish through the card's own Publish form, and wait for its answer."""
    box = page.locator(f"#{section} form.publish")  # type: ignore[attr-defined]
    box.locator("input[name=event]").fill(event)
    box.locator("input[name=data]").fill(data)
    box.locator("input[name=token]").fill(TOKEN)
    before = box.locator(".publish-status").inner_text()
    box.locator("button").click()
    page.wait_for_function(  # type: ignore[attr-defined]
        """([section, before]) => {
            const text = document.querySelector(`#${section} .publish-status`).textContent;
            return text !== before && text.startsWith("published");
        }""",
        arg=[section, before],
        timeout=10_000,
    )


def console_errors(
    browser: object, url: str, *, settle: float, wait_for_404: bool = False
) -> list[str]:
    """Every console error and uncaught exception while *url* loads, its Publish forms are
    checked (what submitting one does first), and *settle* seconds pass (or, with
    *wait_for_404*, until a 404 is reported).
    """
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda note: errors.append(note.text) if note.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(url, wait_until="networkidle", timeout=15_000)
        page.evaluate("() => [...document.forms].map((form) => form.checkValidity())")
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline and not (
            wait_for_404 and any("404" in error for error in errors)
        ):
            page.wait_for_timeout(50)
    finally:
        context.close()
    return errors


def the_page_as_it_was(stack: DemoStack) -> str:
    """The negative control: the demo page as it was before the fix, served as a static file
    by the same app (no request interception, which keeps Chromium from asking for an icon):
    no icon link, so the browser asks for /favicon.ico, and a pattern attribute that is no
    regular expression under the "v" flag."""
    static = stack.project.root / "src" / stack.project.package / "static"
    with urllib.request.urlopen(f"{stack.memory.url}/", timeout=10) as answer:
        html = answer.read().decode()
    html = html.replace('<link rel="icon" href="data:,">', "")
    html = html.replace("/static/channels.js", "/static/channels-as-it-was.js")
    (static / "as-it-was.html").write_text(html)
    script = (static / "channels.js").read_text().replace(r"._\-]", "._-]")
    (static / "channels-as-it-was.js").write_text(script)
    return f"{stack.memory.url}/static/as-it-was.html"


def test_the_demo_page_loads_without_a_console_error(
    browser: object, demo_stack: DemoStack
) -> None:
    # The negative control first: the same check catches both errors the page had...
    started = time.monotonic()
    old = console_errors(browser, the_page_as_it_was(demo_stack), settle=10, wait_for_404=True)
    took = time.monotonic() - started
    assert any("is not a valid regular expression" in error for error in old), old
    assert any("404" in error for error in old), old
    # ...and the page as generated has none, given longer than the old one took to show them.
    assert console_errors(browser, f"{demo_stack.memory.url}/", settle=max(1.0, took)) == []


def test_channel_cards_show_named_events_and_resets(browser: object, demo_stack: DemoStack) -> None:
    app = demo_stack.memory
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    try:
        page.goto(f"{app.url}/", timeout=10_000)
        connect(page, "news", "feed")
        publish(page, "news", "plain")
        publish(page, "news", "order 7", event="created")
        publish(page, "feed", "on the feed", event="created")
        news = wait_for_items(page, "news", 2)
        assert [item.split(" ", 1)[1] for item in news] == ["plain", "created order 7"]
        (feed,) = wait_for_items(page, "feed", 1)
        assert '"event":"created"' in feed and '"data":"on the feed"' in feed

        # The in-process broker starts over with its worker: the ids the cards hold are from
        # a log that no longer exists, and each card is told so with a reset.
        (worker,) = app.children()
        os.kill(worker, signal.SIGKILL)
        news = wait_for_items(page, "news", 3)
        feed_items = wait_for_items(page, "feed", 2)
        assert news[2].split(" ", 2)[1] == "reset", news
        assert '"event":"reset"' in feed_items[1], feed_items
        page.wait_for_function(
            "() => document.querySelector('#news .status').textContent === 'open'",
            timeout=10_000,
        )
        publish(page, "news", "after the restart")
        assert wait_for_items(page, "news", 4)[3].endswith(" after the restart")
        # The lists are not numbered: "1. #0 ..." read as two counters.
        numbering = "() => getComputedStyle(document.querySelector('#news .events')).listStyleType"
        assert page.evaluate(numbering) == "none"
    finally:
        context.close()


def test_channel_cards_resume_exactly_once_across_a_restart_and_ticks_say_they_ended_early(
    browser: object, demo_stack: DemoStack
) -> None:
    app = demo_stack.redis
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()

    def shorten(route: object) -> None:
        url: str = route.request.url  # type: ignore[attr-defined]
        route.continue_(url=f"{url}?count=300&interval=0.2")  # type: ignore[attr-defined]

    page.route("**/lines", shorten)
    try:
        page.goto(f"{app.url}/", timeout=10_000)
        connect(page, "news", "feed", "lines")
        sent = []
        for n in range(3):
            sent.append(f"before {n}")
            publish(page, "news", sent[-1])
            publish(page, "feed", sent[-1])
        wait_for_items(page, "news", 3)
        wait_for_items(page, "feed", 3)

        # HUP: new workers start, the old ones end their streams at once.
        restart_gracefully(app, timeout=15)
        for n in range(3):
            sent.append(f"during {n}")
            publish(page, "news", sent[-1])
            publish(page, "feed", sent[-1])
        page.wait_for_function(
            """() => ['news', 'feed'].every((id) =>
                document.querySelector(`#${id} .status`).textContent === 'open')""",
            timeout=20_000,
        )
        sent.append("after")
        publish(page, "news", sent[-1])
        publish(page, "feed", sent[-1])
        news = wait_for_items(page, "news", len(sent))
        feed = wait_for_items(page, "feed", len(sent))
        time.sleep(0.5)  # room for a duplicate to show up, were there one
        news, feed = items(page, "news"), items(page, "feed")

        lines_status = status(page, "lines")
        lines_why = page.locator("#lines .why").inner_text()
    finally:
        context.close()

    # Every event once, in order, on both channel cards, though both streams were ended.
    assert [item.split(" ", 1)[1] for item in news] == sent
    assert [item.rsplit('"data":"', 1)[1].removesuffix('"}') for item in feed] == sent
    # The ticks stream cannot resume: its card says it ended early, and why.
    assert lines_status == "ended early"
    assert "it restarted" in lines_why


def test_a_channel_card_refused_for_now_comes_back_when_told(
    browser: object, demo_stack: DemoStack
) -> None:
    """A 503 with Retry-After (here: the worker holds its one stream) is not the end."""
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    try:
        page.goto(f"{demo_stack.full.url}/", timeout=10_000)
        connect(page, "news")
        page.locator("#feed > p button").click()
        page.wait_for_function(
            "() => document.querySelector('#feed .status').textContent === 'reconnecting'",
            timeout=10_000,
        )
        why = page.locator("#feed .why").inner_text()
        assert why.startswith("503: this server holds 1 open streams"), why
        # The slot is free again: the card is back at its next try.
        page.locator("#news > p button").click()
        page.wait_for_function(
            "() => document.querySelector('#feed .status').textContent === 'open'",
            timeout=10_000,
        )
        publish(page, "feed", "once in")
        assert wait_for_items(page, "feed", 1)[0].endswith('"data":"once in"}')
    finally:
        context.close()
