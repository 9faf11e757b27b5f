"""The generated README.md, in every combination it has, read as Markdown and run as written.

Its text depends on the worker class, the proxy and the kinds of endpoints (ticks, channels,
their formats). Each combination is rendered and parsed: no empty code block, every table
whole, a link to each section it names, and nothing about an endpoint kind the project lacks.

Its ``console`` blocks follow the convention of the scaffolder's own pages (see
docs/development.md): commands after ``$ ``, then what they print where it is shown, and
``<!-- docs-test: skip REASON -->`` right above a block that is not run. `run_readme` runs
the others in a rendered project, in one shell, in order, as a reader would type them, with
the fixed ports (5000, 8000, 8080, 8443) moved to free ones.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import markdown
import pytest

from harness.stack import (
    HOST,
    PROXY_CONFIGS,
    free_port,
    proxy_binary,
    render_project,
    rewrite_ports,
)
from tests.conftest import render, snapshot_template

# A console block that is not run says why, right above it.
SKIP = re.compile(r"<!-- docs-test: skip (?P<reason>\S.*?) -->")
FENCE = re.compile(r"^```(?P<info>\w*)\n(?P<body>.*?)^```$", re.DOTALL | re.MULTILINE)


def ticks(name: str, fmt: str, path: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "path": path or f"/{name}",
        "style": "decorator",
        "format": fmt,
        "session": False,
    }


def channel(name: str, fmt: str) -> dict[str, Any]:
    return {**ticks(name, fmt), "style": "wrapper", "source": "channel"}


# Every kind of project the README speaks of differently.
ENDPOINT_SETS: Mapping[str, list[dict[str, Any]]] = {
    "ticks-sse": [ticks("events", "sse")],
    "ticks-text": [ticks("lines", "ndjson"), ticks("log", "text", "/api/log")],
    "channels-only": [channel("news", "sse"), channel("feed", "ndjson")],
    "channel-sse-only": [channel("news", "sse")],
    "channel-first": [channel("news", "sse"), ticks("events", "ndjson")],
}
PROXIES = ("nginx", "caddy", "apache", "none")
# Each endpoint set with each proxy; the worker class alternates (it changes two phrases).
COMBINATIONS = [
    (kind, proxy, ("gthread", "gevent")[n % 2])
    for n, (kind, proxy) in enumerate((k, p) for k in ENDPOINT_SETS for p in PROXIES)
]


@dataclass(frozen=True)
class Command:
    """A ``$`` command, and whether the README shows what it prints (then it may fail: curl
    stopped by ``--max-time``, say)."""

    text: str
    shows_output: bool


@dataclass(frozen=True)
class Block:
    """A fenced ``console`` block: its first line, commands, and why it is not run (if not)."""

    first_line: str
    commands: tuple[Command, ...]
    skip: str | None


def console_blocks(text: str) -> list[Block]:
    blocks = []
    for fence in FENCE.finditer(text):
        if fence["info"] != "console":
            continue
        above = text[: fence.start()].rstrip("\n").rpartition("\n")[2]
        skip = SKIP.fullmatch(above)
        lines = fence["body"].splitlines()
        commands: list[Command] = []
        for line in lines:
            if line.startswith("$ "):
                commands.append(Command(line[2:], shows_output=False))
            elif commands:
                commands[-1] = Command(commands[-1].text, shows_output=True)
        blocks.append(Block(lines[0] if lines else "", tuple(commands), skip and skip["reason"]))
    return blocks


class _Html(HTMLParser):
    """What the checks need of the rendered HTML: code blocks, table rows, ids and links."""

    def __init__(self) -> None:
        super().__init__()
        self.code_blocks: list[str] = []
        self.table_rows = 0
        self.ids: set[str] = set()
        self.links: list[str] = []
        self._in_pre_code = False
        self._in_pre = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(str(attributes["id"]))
        if tag == "a" and attributes.get("href"):
            self.links.append(str(attributes["href"]))
        if tag == "pre":
            self._in_pre = True
        if tag == "code" and self._in_pre:
            self._in_pre_code = True
            self.code_blocks.append("")
        if tag == "tr":
            self.table_rows += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._in_pre = self._in_pre_code = False

    def handle_data(self, data: str) -> None:
        if self._in_pre_code:
            self.code_blocks[-1] += data


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as it is on disk, as a plain folder: Copier renders it without a clone."""
    return snapshot_template(tmp_path_factory.mktemp("readme-template") / "template")


def render_readme(template: Path, destination: Path, data: Mapping[str, Any]) -> str:
    render(template, destination, data, vcs_ref=None, exclude=["*", "!README.md"])
    return (destination / "README.md").read_text()


@pytest.mark.parametrize(("kind", "proxy", "server"), COMBINATIONS)
def test_every_readme_is_whole_and_speaks_only_of_what_the_project_has(
    template_dir: Path, tmp_path: Path, kind: str, proxy: str, server: str
) -> None:
    endpoints = ENDPOINT_SETS[kind]
    text = render_readme(
        template_dir, tmp_path, {"server": server, "proxy": proxy, "endpoints": endpoints}
    )
    html = _Html()
    html.feed(markdown.markdown(text, extensions=["fenced_code", "tables", "toc"]))

    assert all(block.strip() for block in html.code_blocks), "an empty code block"
    # A table row cut off from its table would be a paragraph with pipes in it.
    source_rows = [line for line in text.splitlines() if line.startswith("|")]
    separators = [line for line in source_rows if set(line) <= set("|-: ")]
    assert html.table_rows == len(source_rows) - len(separators), "a table is cut in two"
    for link in html.links:
        if link.startswith("#"):
            assert link[1:] in html.ids, f"a link to a missing section: {link}"

    has_ticks = any(e.get("source", "ticks") == "ticks" for e in endpoints)
    has_channels = any(e.get("source") == "channel" for e in endpoints)
    lowered = text.lower()
    assert ("channel" in lowered) == has_channels
    assert ("`count`" in text) == has_ticks
    assert ("204" in text) == any(e["format"] == "sse" and "source" not in e for e in endpoints)
    assert ("### over https" in lowered) == (proxy != "none")
    # Every stream the README shows is one of the project's endpoints, and each is shown.
    shown = set(re.findall(r'curl -N (?:--max-time 2 )?"http://127\.0\.0\.1:5000(/[^"?]*)', text))
    assert shown == {e["path"] for e in endpoints}
    for block in console_blocks(text):
        assert block.first_line.startswith("$ "), f"a console block without a command: {block}"


# --------------------------------------------------------------------------- running
SERVERS = {"flask": 5000, "gunicorn": 8000, "nginx": 8080, "caddy": 8080, "apache2": 8080}
# The suite's own packages stand in for the project's install: its tools are on PATH, and the
# project's src/ on PYTHONPATH (what the editable install does).
INSTALL = {"python -m venv .venv && . .venv/bin/activate", 'pip install -e ".[dev]"'}


def shell_lines(command: Command, number: int, ports: Mapping[int, int]) -> list[str]:
    """*command* as the test's shell runs it: a server in the background until it answers.

    A server starts with the deploy files' ports moved ($PORTED) and, once it answers, the
    files are put back ($ORIGINAL): what the README runs next (the project's own tests)
    reads them as generated.
    """
    if command.text in INSTALL:
        return []
    text = command.text
    for old, new in ports.items():
        text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
    # A comment would swallow what is appended below.
    text = re.sub(r"\s+#\s.*$", "", text)
    program = shlex.split(text)[0]
    server_port = SERVERS.get(program)
    if program in ("flask", "caddy") and " run" not in text:
        server_port = None
    if server_port is not None:
        return [
            'cp -r "$PORTED"/. deploy/',
            f'{text} > "$LOGS/server-{number}.log" 2>&1 &',
            f"wait_for {ports[server_port]}",
            'cp -r "$ORIGINAL"/. deploy/',
        ]
    return [f"{text} || true" if command.shows_output else text]


WAIT_FOR = f"""wait_for() {{
    for _ in $(seq 200); do
        curl -s -o /dev/null "http://{HOST}:$1/" && return 0
        sleep 0.1
    done
    echo "nothing answers on port $1"; tail -n 20 "$LOGS"/server-*.log; exit 1
}}"""


def run_readme(project: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run every console block of *project*'s README.md not marked to skip, in one shell."""
    ports = {old: free_port() for old in (5000, 8000, 8080, 8443)}
    original, ported, logs = workdir / "original", workdir / "ported", workdir / "logs"
    shutil.copytree(project / "deploy", original)
    shutil.copytree(project / "deploy", ported)
    logs.mkdir()
    conf = ported / "gunicorn.conf.py"
    conf.write_text(conf.read_text().replace("127.0.0.1:8000", f"127.0.0.1:{ports[8000]}"))
    for name in PROXY_CONFIGS.values():
        if (ported / name).is_file():
            (ported / name).write_text(
                rewrite_ports(
                    (ported / name).read_text(),
                    port=ports[8080],
                    tls_port=ports[8443],
                    upstream_port=ports[8000],
                )
            )
    lines = ["set -euo pipefail", WAIT_FOR]
    number = 0
    for block in console_blocks((project / "README.md").read_text()):
        if block.skip is None:
            for command in block.commands:
                number += 1
                lines.append(f"echo {shlex.quote('$ ' + command.text)}")
                lines += shell_lines(command, number, ports)
    env = {
        "PATH": os.pathsep.join(
            [str(Path(sys.executable).parent), "/usr/sbin", "/usr/bin", "/bin"]
        ),
        "PYTHONPATH": str(project / "src"),
        "HOME": str(workdir),
        "XDG_CONFIG_HOME": str(workdir / "config"),
        "XDG_DATA_HOME": str(workdir / "data"),
        "FLASK_RUN_PORT": str(ports[5000]),
        "LANG": "C.UTF-8",
        "ORIGINAL": str(original),
        "PORTED": str(ported),
        "LOGS": str(logs),
    }
    with _session(["bash", "-c", "\n".join(lines)], project, env) as process:
        out, _ = process.communicate(timeout=240)
    return subprocess.CompletedProcess(process.args, process.returncode, out, "")


@contextlib.contextmanager
def _session(
    args: Sequence[str], cwd: Path, env: Mapping[str, str]
) -> Iterator[subprocess.Popen[str]]:
    """*args* in a session of its own; the servers it leaves running are stopped with it."""
    process = subprocess.Popen(
        args,
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        # Everything the script started is in the session's process group, and only that.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


# The README with the most to run: both kinds of endpoint, and a proxy. (Each proxy's own
# command line is the one harness/stack.py starts it with.)
RUNS = {"channel-first-nginx": ("gthread", "nginx", ENDPOINT_SETS["channel-first"])}


@pytest.mark.deploy
@pytest.mark.parametrize("run", RUNS)
def test_every_console_block_of_the_readme_runs_as_written(tmp_path: Path, run: str) -> None:
    server, proxy, endpoints = RUNS[run]
    if proxy_binary(proxy) is None:
        pytest.skip(f"{proxy} is not installed")
    project = render_project(tmp_path / "project", server=server, proxy=proxy, endpoints=endpoints)
    result = run_readme(project.root, tmp_path / "run")
    assert result.returncode == 0, result.stdout[-5000:]
