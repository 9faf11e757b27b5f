"""Fixtures for the deployment tests: generated projects served by gunicorn behind each proxy.

Each pytest process (xdist worker) renders its projects and starts its servers once, on free
ports, and stops them by pid when the session ends, whatever happened. One gunicorn per worker
class serves every format; each proxy config variant (as generated, or with one streaming
setting undone) is one proxy instance in front of it.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

import pytest

from harness.chaos import ChaosConfig, render
from harness.redis_stack import redis_binary
from harness.stack import (
    PROXY_CONFIGS,
    Process,
    Project,
    chromium_binary,
    nginx_binary,
    proxy_binary,
    render_project,
    start_gunicorn,
    start_proxy,
    stop,
)

HERE = Path(__file__).resolve().parent
SERVERS = ("gthread", "gevent")
VIAS = ("direct", "nginx")
PROXIES = tuple(PROXY_CONFIGS)
FRONTS = ("direct", *PROXIES)
PACKAGES = {"nginx": "nginx", "caddy": "caddy", "apache": "apache2-bin"}

requires_nginx = pytest.mark.skipif(
    nginx_binary() is None, reason="nginx is not installed (apt-get install nginx)"
)
requires_chromium = pytest.mark.skipif(
    chromium_binary() is None, reason="chromium is not installed (apt-get install chromium)"
)
requires_redis = pytest.mark.skipif(
    redis_binary() is None, reason="redis-server is not installed (apt-get install redis-server)"
)


def require_proxy(kind: str) -> None:
    """Skip the calling test or fixture when proxy *kind* is not installed."""
    if kind != "direct" and proxy_binary(kind) is None:
        pytest.skip(f"{kind} is not installed (apt-get install {PACKAGES[kind]})")


def nginx_defaults(text: str) -> str:
    """Undo the generated config's streaming settings: nginx's proxy defaults come back.

    That is ``proxy_buffering on`` and an HTTP/1.0 upstream. Both matter: nginx 1.22 passes
    each read of a *chunked* HTTP/1.1 upstream body on even with buffering on, so a small
    trickle only stalls when the upstream speaks HTTP/1.0, as a bare ``proxy_pass`` does.
    """
    text, buffering = re.subn(r"proxy_buffering off;", "proxy_buffering on;", text)
    text, version = re.subn(r"\n\s*proxy_http_version 1\.1;", "", text)
    text, connection = re.subn(r'\n\s*proxy_set_header Connection "";', "", text)
    assert buffering and version and connection, "the generated nginx.conf changed shape"
    return text


def caddy_compresses_streams(text: str) -> str:
    """Let Caddy's ``encode`` compress the stream types too, from the first byte on.

    The realistic mistake: a bare ``encode gzip`` compresses every text/* response, and a
    stream whose first write reaches ``minimum_length`` (512 bytes by default) is then held
    back. Here the minimum is 1 byte so that the probe's small records hit it too.
    """
    types = "".join(
        f"\n\t\t\theader Content-Type {kind}*"
        for kind in ("text/event-stream", "application/x-ndjson", "text/plain")
    )
    text, n = re.subn(
        r"(\n\tencode gzip \{)(\n\t\tmatch \{)",
        rf"\g<1>\n\t\tminimum_length 1\g<2>{types}",
        text,
    )
    assert n == 1, "the generated Caddyfile changed shape"
    return text


def apache_holds_output(text: str) -> str:
    """Put an output filter that holds the body in front of every response.

    Measured with httpd 2.4 from Debian: flushpackets=off, mod_deflate and mod_brotli on the
    streams all still delivered each record live (mod_proxy_http flushes whenever the app
    pauses), so none of them can serve as the control. This filter pipes the body through
    sed, whose output is block-buffered: the probe must then end "unconfirmed".
    """
    filters = (
        "\nLoadModule ext_filter_module /usr/lib/apache2/modules/mod_ext_filter.so\n"
        'ExtFilterDefine hold mode=output cmd="/bin/sed -e s/^//"\n'
        "SetOutputFilter hold\n"
    )
    assert "ProxyPass " in text, "the generated apache.conf changed shape"
    return text + filters


def without_client_limits(streams: int) -> Callable[[str], str]:
    """Let one client open *streams* at once through nginx: a load test opens hundreds of
    streams from one address, far beyond the generated per-client connection limit, and at a
    rate its request-rate limit refuses (NDJSON requests are not exempt, SSE ones are)."""

    def edit(text: str) -> str:
        text, conns = re.subn(
            r"limit_conn per_client \d+;", f"limit_conn per_client {streams};", text
        )
        text, rates = re.subn(r"\n\s*limit_req zone=[^;]+;", "", text)
        assert conns == rates == 1, "the generated nginx.conf changed shape"
        return text

    return edit


# The negative control of each proxy: the same config with its stream-keeping undone.
BUFFERING_CONTROLS: Mapping[str, Callable[[str], str]] = {
    "nginx": nginx_defaults,
    "caddy": caddy_compresses_streams,
    "apache": apache_holds_output,
}

READ_TIMEOUTS = {
    "nginx": (r"proxy_read_timeout [^;]+;", "proxy_read_timeout {}s;"),
    "caddy": (r"read_timeout \S+", "read_timeout {}s"),
    "apache": (r"ProxyTimeout \S+", "ProxyTimeout {}"),
}


def with_read_timeout(seconds: str, kind: str = "nginx") -> Callable[[str], str]:
    """Set proxy *kind*'s read timeout (the longest silence from the app) to *seconds*."""
    pattern, replacement = READ_TIMEOUTS[kind]

    def edit(text: str) -> str:
        text, n = re.subn(pattern, replacement.format(seconds.removesuffix("s")), text)
        assert n == 1, f"the generated {kind} config sets no read timeout"
        return text

    return edit


@dataclass
class Stack:
    """gunicorn serving the probe app, each proxy in front of it as generated (``proxies``)
    and with its stream-keeping undone (``controls``); ``proxy`` and ``naive`` are nginx's."""

    project: Project
    app: Process
    proxies: dict[str, Process]
    controls: dict[str, Process]
    confirm_dir: Path
    _tokens: Iterator[int]

    @property
    def proxy(self) -> Process:
        return self.proxies["nginx"]

    @property
    def naive(self) -> Process:
        return self.controls["nginx"]

    def port(self, via: str) -> int:
        """The plain HTTP port of *via*: "direct" (gunicorn) or a proxy."""
        if via == "direct":
            return self.app.port
        require_proxy(via)
        return self.proxies[via].port

    def token(self) -> str:
        """A confirmation token no other probe stream uses."""
        return f"t{next(self._tokens)}-{uuid.uuid4().hex[:8]}"


T = TypeVar("T")


class Servers:
    """Starts processes and stops every one of them, by pid, at the end of the session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[Process] = []
        self.projects: dict[tuple[str, str], Project] = {}
        self._made: dict[str, object] = {}

    def once(self, key: str, make: Callable[[], T]) -> T:
        """What *make* returns, made once per session under *key*.

        pytest tears a parametrized session fixture down and makes it again when the tests
        of its parameters interleave on a worker (xdist's work stealing does that), and
        servers started again in the same directories would find the first ones running.
        """
        if key not in self._made:
            self._made[key] = make()
        return cast("T", self._made[key])

    def project(self, server: str, proxy: str = "nginx") -> Project:
        """The default endpoints rendered with *server* and *proxy*, once per session."""
        if (server, proxy) not in self.projects:
            self.projects[server, proxy] = render_project(
                self.root / f"project-{server}-{proxy}", server=server, proxy=proxy
            )
        return self.projects[server, proxy]

    def gunicorn(
        self,
        server: str,
        name: str,
        *,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> Process:
        """gunicorn with the project's deploy/gunicorn.conf.py, serving the probe app."""
        project = self.project(server)
        confirm_dir = self.root / "confirm"
        confirm_dir.mkdir(exist_ok=True)
        process = start_gunicorn(
            project,
            log_path=self.root / f"{name}.log",
            app="probe_app:create_app()",
            pythonpath=[HERE],
            env={
                "STREAM_PROBE_PACKAGE": project.package,
                "STREAM_PROBE_DIR": str(confirm_dir),
                **(env or {}),
            },
            extra_args=extra_args,
        )
        self.started.append(process)
        return process

    def proxy(
        self,
        kind: str,
        name: str,
        upstream: Process,
        edit: Callable[[str], str] | None = None,
        *,
        server: str = "gthread",
    ) -> Process:
        """Proxy *kind* with a copy of its generated config, proxying to *upstream*.

        The proxy configs do not depend on the worker class; *server* only picks which
        rendered project they are read from.
        """
        require_proxy(kind)
        process = start_proxy(
            self.project(server, kind), self.root / name, upstream_port=upstream.port, edit=edit
        )
        self.started.append(process)
        return process

    def nginx(
        self, server: str, name: str, upstream: Process, edit: Callable[[str], str] | None = None
    ) -> Process:
        """nginx with a copy of the project's deploy/nginx.conf, proxying to *upstream*."""
        return self.proxy("nginx", name, upstream, edit, server=server)

    def stop_all(self) -> None:
        for process in reversed(self.started):
            stop(process)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    started = Servers(tmp_path_factory.mktemp("deploy"))
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture(scope="session", params=SERVERS)
def stack(request: pytest.FixtureRequest, servers: Servers) -> Stack:
    """The generated project under *server*, straight from its deploy/ files: one gunicorn,
    and every installed proxy in front of it, as generated and as its negative control."""
    require_proxy("nginx")
    server: str = request.param
    return servers.once(f"stack-{server}", lambda: start_stack(servers, server))


def start_stack(servers: Servers, server: str) -> Stack:
    """The `stack` of *server*."""
    app = servers.gunicorn(server, f"gunicorn-{server}")
    proxies: dict[str, Process] = {}
    controls: dict[str, Process] = {}
    for kind in PROXIES:
        if proxy_binary(kind) is None:
            continue
        proxies[kind] = servers.proxy(kind, f"{kind}-{server}", app, server=server)
        controls[kind] = servers.proxy(
            kind, f"{kind}-control-{server}", app, BUFFERING_CONTROLS[kind], server=server
        )
    return Stack(
        servers.project(server), app, proxies, controls, servers.root / "confirm", itertools.count()
    )


# Headless Chromium, quiet: no background traffic, no QUIC (HTTP/2 over TCP is the point).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """The system's Chromium through Playwright, one per test process: a second sync
    Playwright in the same process would refuse to start."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_binary(), args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def chaos_projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Project]:
    """The channel project of the fault-injection runs, rendered once per worker class."""
    return render(ChaosConfig(seconds=0), tmp_path_factory.mktemp("chaos-projects"))


@pytest.fixture(scope="session")
def channel_projects(servers: Servers) -> dict[str, Project]:
    """The deploy tests' channel project (test_channels.ENDPOINTS), rendered once per worker
    class for the whole session: test_channels, test_resilience and test_metrics run it."""
    from .test_channels import ENDPOINTS  # a test module that imports this one

    return {
        server: render_project(
            servers.root / f"channels-{server}", server=server, endpoints=ENDPOINTS
        )
        for server in SERVERS
    }
