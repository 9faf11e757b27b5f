"""Run a generated project on the real stack: gunicorn, optionally behind a proxy, on 127.0.0.1.

A small, stable API for tests and benchmarks::

    project = render_project(tmp / "app", server="gevent", proxy="caddy", endpoints=[...])
    app = start_gunicorn(project, log_path=tmp / "gunicorn.log")
    proxy = start_proxy(project, tmp / "caddy", upstream_port=app.port)
    try:
        ...  # talk to http://127.0.0.1:{app.port} and http://127.0.0.1:{proxy.port}
        app.wait_for_log(r"stream ended: endpoint=events reason=complete")
    finally:
        stop(proxy)
        stop(app)

Every process is started here as a direct child and stopped by its process id (``stop``),
never by name. Every wait is bounded. Nothing here talks to any host but 127.0.0.1. Each proxy
(nginx, Caddy, Apache httpd) runs from a prefix directory of its own, with a copy of the
project's config, its own pid file, logs, temp files and development certificate (made by the
project's ``deploy/dev-cert.sh``): the system's configuration is never read.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "REPO_ROOT",
    "Process",
    "Project",
    "StackError",
    "chromium_binary",
    "free_port",
    "nginx_binary",
    "proxy_binary",
    "render_project",
    "rewrite_ports",
    "start_gunicorn",
    "start_nginx",
    "start_proxy",
    "stop",
    "wait_until_answers",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"

DEFAULT_ENDPOINTS: tuple[Mapping[str, Any], ...] = (
    {"name": "events", "path": "/events", "style": "decorator", "format": "sse", "session": True},
    {"name": "lines", "path": "/lines", "style": "wrapper", "format": "ndjson", "session": False},
    {"name": "log", "path": "/log", "style": "decorator", "format": "text", "session": False},
)


# The proxies the template can generate, and the file each one's config is rendered to.
PROXY_CONFIGS: Mapping[str, str] = {
    "nginx": "nginx.conf",
    "caddy": "Caddyfile",
    "apache": "apache.conf",
}
# The addresses the generated configs use: gunicorn, the plain listener, the TLS listener.
UPSTREAM_ADDRESS, PLAIN_ADDRESS, TLS_ADDRESS = "127.0.0.1:8000", ":8080", ":8443"


class StackError(RuntimeError):
    """A server did not start, did not answer in time, or rejected its configuration."""


def nginx_binary() -> str | None:
    """The nginx executable, or None when it is not installed."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).is_file()), None
    )


def proxy_binary(kind: str) -> str | None:
    """The executable of proxy *kind* (nginx, caddy or apache), or None when not installed."""
    if kind == "nginx":
        return nginx_binary()
    name = {"caddy": "caddy", "apache": "apache2"}[kind]
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).is_file()), None
    )


def chromium_binary() -> str | None:
    """The system Chromium executable, or None when it is not installed."""
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Project:
    """A rendered project: its directory, import package and gunicorn worker class."""

    root: Path
    package: str
    server: str
    endpoints: tuple[Mapping[str, Any], ...]
    proxy: str = "nginx"

    @property
    def gunicorn_conf(self) -> Path:
        return self.root / "deploy" / "gunicorn.conf.py"

    @property
    def nginx_conf(self) -> Path:
        return self.root / "deploy" / "nginx.conf"

    @property
    def proxy_conf(self) -> Path:
        return self.root / "deploy" / PROXY_CONFIGS[self.proxy]

    def gunicorn_settings(self) -> dict[str, Any]:
        """The settings the generated gunicorn.conf.py defines (it is plain Python)."""
        namespace: dict[str, Any] = {"__file__": str(self.gunicorn_conf)}
        # The project's own config, as gunicorn itself runs it.
        code = compile(self.gunicorn_conf.read_text(), str(self.gunicorn_conf), "exec")
        exec(code, namespace)  # noqa: S102
        return {k: v for k, v in namespace.items() if not k.startswith("__")}


def render_project(
    dest: Path,
    *,
    server: str = "gthread",
    endpoints: Iterable[Mapping[str, Any]] = DEFAULT_ENDPOINTS,
    project_name: str = "stream-demo",
    proxy: str = "nginx",
    template: Path = REPO_ROOT,
    vcs_ref: str = "HEAD",
) -> Project:
    """Render the template of this checkout (uncommitted changes included) into *dest*.

    *template* is another checkout (or git ref exported with its history) to render instead;
    *vcs_ref* names a commit of it to render (a benchmark's baseline).
    """
    # Imported on use: the benchmarks that only start servers do without Copier's 0.3 s.
    from copier import run_copy  # noqa: PLC0415
    from copier.errors import DirtyLocalWarning  # noqa: PLC0415

    endpoint_list = [dict(e) for e in endpoints]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DirtyLocalWarning)
        worker = run_copy(
            str(template),
            dest,
            data={
                "project_name": project_name,
                "server": server,
                "proxy": proxy,
                "endpoints": endpoint_list,
            },
            defaults=True,
            unsafe=True,
            quiet=True,
            vcs_ref=vcs_ref,
        )
    package = str(worker.answers.combined["package_name"])
    return Project(dest, package, server, tuple(endpoint_list), proxy)


@dataclass
class Process:
    """A server process started by this module; its output goes to *log_path*."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path
    extra_logs: tuple[Path, ...] = ()
    tls_port: int | None = None
    """A proxy's HTTPS (HTTP/2) port; its ``port`` is the plain HTTP listener."""
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def children(self) -> list[int]:
        """Process ids of this process's direct children (gunicorn or nginx workers)."""
        return _children(self.pid)

    def log(self) -> str:
        """Everything logged so far: the process's own output, then any extra log files."""
        parts = [
            p.read_text(errors="replace") for p in (self.log_path, *self.extra_logs) if p.exists()
        ]
        return "".join(parts)

    def wait_for_log(self, pattern: str, *, timeout: float = 10.0, since: int = 0) -> re.Match[str]:
        """Wait until a line matching the regular expression *pattern* has been logged.

        *since* skips that many characters of ``log()``: pass ``len(process.log())`` taken
        before an action to look only at what it logged.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            if match := regex.search(self.log(), since):
                return match
            if time.monotonic() > deadline:
                raise StackError(
                    f"{self.name}: no log line matched {pattern!r} in {timeout:g} s; "
                    f"log tail:\n{self.log()[-3000:]}"
                )
            time.sleep(0.05)


def wait_until_answers(
    port: int, *, path: str = "/", timeout: float = 20.0, process: Process | None = None
) -> None:
    """Wait until ``GET path`` on 127.0.0.1:*port* gets any HTTP answer (bounded)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise StackError(
                f"{process.name} exited with {process.popen.returncode}; "
                f"log:\n{process.log()[-3000:]}"
            )
        conn = http.client.HTTPConnection(HOST, port, timeout=2)
        try:
            conn.request("GET", path)
            conn.getresponse().read()
        except OSError as error:
            last_error = error
            time.sleep(0.05)
        else:
            return
        finally:
            conn.close()
    raise StackError(f"nothing answered on {HOST}:{port}{path} within {timeout:g} s: {last_error}")


def start_gunicorn(
    project: Project,
    *,
    log_path: Path,
    port: int | None = None,
    worker_class: str | None = None,
    app: str | None = None,
    env: Mapping[str, str] | None = None,
    pythonpath: Sequence[Path] = (),
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
) -> Process:
    """Start gunicorn with the project's ``deploy/gunicorn.conf.py`` and wait until it answers.

    Only the bind address is overridden (127.0.0.1 and *port*, a free one by default), plus
    *worker_class* when given and whatever *extra_args* say (e.g. ``["--workers", "1"]``).
    *app* replaces the configured ``wsgi_app`` (e.g. ``"probe_app:create_app()"``), imported
    with *pythonpath* on ``PYTHONPATH``. *env* is added to a copy of this process's
    environment; ``FLASK_SECRET_KEY`` gets a test value unless *env* sets it.
    """
    port = free_port() if port is None else port
    full_env = {**os.environ, "FLASK_SECRET_KEY": "test-only-secret-key-" + "x" * 32}
    # No metrics listener unless asked for: servers started in parallel would all claim the
    # one address of the generated config (127.0.0.1:9464).
    full_env["METRICS_BIND"] = ""
    full_env.update(env or {})
    if pythonpath:
        extra = os.pathsep.join(str(p) for p in pythonpath)
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra, full_env.get("PYTHONPATH")]))
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(project.gunicorn_conf),
        "--bind",
        f"{HOST}:{port}",
    ]
    if _has_control_socket():
        # gunicorn 25+ opens a control socket at one fixed path per user by default: parallel
        # servers would take it from each other.
        args.append("--no-control-socket")
    if worker_class:
        args += ["--worker-class", worker_class]
    args += list(extra_args)
    if app:
        args.append(app)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            args,
            cwd=project.root,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    process = Process(f"gunicorn:{port}", popen, port, log_path)
    try:
        wait_until_answers(port, timeout=timeout, process=process)
    except BaseException:
        stop(process)
        raise
    return process


def _has_control_socket() -> bool:
    from gunicorn.config import KNOWN_SETTINGS  # noqa: PLC0415  (only to start gunicorn)

    return any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS)


def rewrite_ports(text: str, *, port: int, tls_port: int, upstream_port: int) -> str:
    """Point a generated proxy config at free ports: plain HTTP *port*, HTTPS *tls_port* and
    gunicorn on *upstream_port* (the configs use 8080, 8443 and 8000 on 127.0.0.1)."""
    counts = []
    for old, new in (
        (UPSTREAM_ADDRESS, f"{HOST}:{upstream_port}"),
        (PLAIN_ADDRESS, f":{port}"),
        (TLS_ADDRESS, f":{tls_port}"),
    ):
        text, n = re.subn(rf"{re.escape(old)}\b", new, text)
        counts.append(n)
    if not all(counts):
        raise StackError(f"expected the addresses 8000, 8080 and 8443; found them {counts} times")
    return text


@dataclass(frozen=True)
class _Runner:
    """How to check and run one kind of proxy from a prefix directory."""

    conf: str  # the config file's name in the prefix
    certs: str  # where the config looks for certs/dev.crt, relative to the prefix
    check: Callable[[str, Path], list[str]]
    run: Callable[[str, Path], list[str]]
    logs: tuple[str, ...]  # log files (relative to the prefix) besides the process output


def _nginx_args(binary: str, prefix: Path) -> list[str]:
    return [binary, "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"), "-e", "logs/error.log"]


def _apache_args(binary: str, prefix: Path) -> list[str]:
    return [binary, "-d", str(prefix), "-f", str(prefix / "apache.conf")]


def _caddy_args(binary: str, prefix: Path) -> list[str]:
    return ["--config", str(prefix / "Caddyfile"), "--adapter", "caddyfile"]


_RUNNERS: Mapping[str, _Runner] = {
    "nginx": _Runner(
        "nginx.conf",
        "certs",
        lambda b, p: [*_nginx_args(b, p), "-t"],
        lambda b, p: [*_nginx_args(b, p), "-g", "daemon off;"],
        ("logs/error.log",),
    ),
    "caddy": _Runner(
        "Caddyfile",
        "deploy/certs",
        lambda b, p: [b, "validate", *_caddy_args(b, p)],
        lambda b, p: [b, "run", *_caddy_args(b, p)],
        (),
    ),
    "apache": _Runner(
        "apache.conf",
        "certs",
        lambda b, p: [*_apache_args(b, p), "-t"],
        lambda b, p: [*_apache_args(b, p), "-DFOREGROUND"],
        ("logs/error.log",),
    ),
}


def start_proxy(
    project: Project,
    prefix: Path,
    *,
    upstream_port: int,
    kind: str | None = None,
    port: int | None = None,
    tls_port: int | None = None,
    edit: Callable[[str], str] | None = None,
    timeout: float = 10.0,
) -> Process:
    """Check and start the project's proxy (or *kind*) with a copy of its generated config.

    The copy lives in *prefix*, which is also the proxy's working directory (pid file, logs,
    temp files, and a development certificate made by the project's ``deploy/dev-cert.sh``),
    listens on 127.0.0.1:*port* (plain HTTP) and :*tls_port* (HTTPS with HTTP/2), free ones
    by default, and proxies to 127.0.0.1:*upstream_port*. *edit*, when given, rewrites the
    config text further (e.g. a shorter read timeout). The proxy runs in the foreground as a
    child of this process; its own log files are part of ``Process.log()``.
    """
    kind = kind or project.proxy
    binary = proxy_binary(kind)
    if binary is None:
        raise StackError(f"{kind} is not installed")
    runner = _RUNNERS[kind]
    source = project.root / "deploy" / PROXY_CONFIGS[kind]
    if not source.is_file():
        raise StackError(f"{project.root} has no deploy/{PROXY_CONFIGS[kind]}")
    port = free_port() if port is None else port
    tls_port = free_port() if tls_port is None else tls_port
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    certs = prefix / runner.certs
    if not (certs / "dev.crt").is_file():
        subprocess.run(
            ["sh", str(project.root / "deploy" / "dev-cert.sh"), str(certs)],
            capture_output=True,
            check=True,
            timeout=timeout,
        )
    text = rewrite_ports(
        source.read_text(), port=port, tls_port=tls_port, upstream_port=upstream_port
    )
    if edit is not None:
        text = edit(text)
    conf = prefix / runner.conf
    conf.write_text(text)
    # Caddy keeps state (autosaved config, locks) under HOME and XDG folders: keep it here.
    env = {**os.environ, "HOME": str(prefix), "XDG_CONFIG_HOME": str(prefix / "config")}
    env["XDG_DATA_HOME"] = str(prefix / "data")
    check = subprocess.run(
        runner.check(binary, prefix),
        cwd=prefix,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check.returncode != 0:
        raise StackError(f"{kind} rejected {conf}:\n{check.stdout}{check.stderr}")
    log_path = prefix / f"{kind}.out"
    with log_path.open("ab") as out:
        popen = subprocess.Popen(
            runner.run(binary, prefix),
            cwd=prefix,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    extra = tuple(prefix / name for name in runner.logs)
    process = Process(f"{kind}:{port}", popen, port, log_path, extra, tls_port)
    try:
        _wait_listening(port, timeout=timeout, process=process)
        _wait_listening(tls_port, timeout=timeout, process=process)
    except BaseException:
        stop(process)
        raise
    return process


def start_nginx(
    project: Project,
    prefix: Path,
    *,
    upstream_port: int,
    port: int | None = None,
    edit: Callable[[str], str] | None = None,
    timeout: float = 10.0,
) -> Process:
    """`start_proxy` with the project's ``deploy/nginx.conf``."""
    return start_proxy(
        project,
        prefix,
        kind="nginx",
        upstream_port=upstream_port,
        port=port,
        edit=edit,
        timeout=timeout,
    )


def stop(process: Process, *, timeout: float = 10.0) -> None:
    """Stop *process* by its pid: SIGTERM, a bounded wait, then SIGKILL (workers included).

    Safe to call twice and on a process that already exited.
    """
    if process._stopped:
        return
    process._stopped = True
    children = process.children() if process.alive() else []
    if process.alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.popen.wait(timeout=timeout)
    # Workers normally exit with their master; one that did not is killed by its own pid.
    deadline = time.monotonic() + timeout
    for child in children:
        while pid_running(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_running(child):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)


def _wait_listening(port: int, *, timeout: float, process: Process) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise StackError(
                f"{process.name} exited with {process.popen.returncode}; "
                f"log:\n{process.log()[-3000:]}"
            )
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.05)
    raise StackError(f"{process.name} did not listen within {timeout:g} s")


def _children(pid: int) -> list[int]:
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    found: list[int] = []
    for task in tasks:
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def restart_gracefully(app: Process, *, timeout: float) -> float:
    """Send gunicorn *app* HUP (new workers, the old ones stopped with SIGTERM) and wait up
    to *timeout* seconds for the old workers to exit; return how long they took."""
    old = app.children()
    hup = time.monotonic()
    os.kill(app.pid, signal.SIGHUP)
    while any(pid_running(pid) for pid in old) and time.monotonic() < hup + timeout:
        time.sleep(0.01)
    return time.monotonic() - hup


def pid_running(pid: int) -> bool:
    """Whether *pid* is a live process (not gone, not a zombie waiting for its parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
