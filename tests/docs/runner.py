"""Run the console blocks of a Markdown page as a reader would, and compare what they print.

A console block is a fenced block whose info string is ``console``. Its commands start with
``$ ``; a line ending in ``\\`` continues a command, and a here-document (``<<'EOF'``) runs
to its delimiter. Every other line is output: what the command before it prints (stdout and
stderr, as a terminal shows them). Where output is shown it must match; ``...`` on a line of
its own stands for any number of lines, and within a line for any text. A command must
succeed unless the block shows what it prints.

All the blocks of a page run in order, in one shell, in a working directory of their own: a
``cd`` or an ``export`` carries over to the next block, as it does for a reader who follows
the page. The ports the pages use (5000 for ``flask run``, 8000 for gunicorn, 8080 and 8443
for a proxy, 9464 for gunicorn's metrics) are rewritten to free ones, in the commands, in
their output and in the configs of ``deploy/`` while a server starts from them.

A command that serves (``flask run``, gunicorn, nginx, Caddy, Apache httpd) runs in the
background, as if in a second terminal: the next command runs once the server listens. It
runs until the page ends, or until another server takes its port (the reader pressed Ctrl-C).

HTML comments right above a block steer it, invisible in the rendered page:

``<!-- docs-test: skip REASON -->``
    The block is not run; the reason says why, in a few words at least (it needs a real
    domain, say).
``<!-- docs-test: before COMMAND -->``
    COMMAND runs first, unseen (several may be given); it must succeed.
``<!-- docs-test: terminal -->``
    Each command runs on a pseudo-terminal; a line of its output that holds a prompt
    (``Project name [live-progress]: ``) is answered with what follows the prompt on it.
``<!-- docs-test: excerpt PATH -->``
    Above a block that is not a console block (a config shown in part): its lines are lines
    of the file PATH, one run of them, as the page has made it by then (``...`` stands for
    any lines, as in output). ``before`` steps may come first.

A block of another kind that holds ``$ `` commands would never run, and fails, as does a
console block that does not start with one.

`run_markdown` runs one page; `Page` runs several files in one shell, e.g. a generated
project's README in the project.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

DOC_PORTS = (5000, 8000, 8080, 8443, 9464)
"""Ports the pages use: flask run, gunicorn, a proxy's HTTP and HTTPS listeners, and the
metrics listener of gunicorn's master."""

# Commands that serve until stopped, and the port each one's readiness is judged by.
_COMMAND_WORD = r"(?:^|[\s;&|(])"
SERVERS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(_COMMAND_WORD + r"flask\s.*\srun\b"), 5000),
    (re.compile(_COMMAND_WORD + r"gunicorn\s"), 8000),
    (re.compile(_COMMAND_WORD + r"nginx\s.*daemon off"), 8080),
    (re.compile(_COMMAND_WORD + r"caddy run\b"), 8080),
    (re.compile(_COMMAND_WORD + r"apache2\s.*-DFOREGROUND"), 8080),
)
# The configs a server reads its ports from, relative to where it is started.
SERVER_CONFIGS = (
    "deploy/gunicorn.conf.py",
    "deploy/nginx.conf",
    "deploy/Caddyfile",
    "deploy/apache.conf",
)
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "shell-session", "zsh", "shellsession"})
SKIP_REASON_WORDS = 4
"""The fewest words a skip's reason has: enough to say what the block needs that a test
cannot give it ("needs a real domain"), more than a label ("slow", "not runnable")."""
COMMAND_TIMEOUT = 180.0
SERVER_TIMEOUT = 30.0

_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<kind>\w+)\s*(?P<rest>.*?)\s*-->\s*$")
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)(?P<word>\w+)\1")
_PROMPT = re.compile(r"^(?P<prompt>.*[\])?]:)(?: (?P<answer>.*))?$")
_PORT = re.compile(r"(?P<any>0\.0\.0\.0)?:(?P<port>\d{4})(?!\d)")


class DocsError(AssertionError):
    """A page that does not run as written, or a block neither run nor marked."""


@dataclass
class Command:
    """One ``$`` command of a block and the output shown for it (None: none shown)."""

    text: str
    shown: list[str] | None = None


@dataclass
class Block:
    """One fenced block of a page."""

    path: Path
    line: int
    info: str
    body: list[str]
    skip: str | None = None
    before: list[str] = field(default_factory=list)
    terminal: bool = False
    excerpt: str | None = None
    """The file the block shows lines of, relative to the page's working directory."""

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"

    @property
    def console(self) -> bool:
        return self.info == "console"

    def commands(self) -> list[Command]:
        """The block's commands with the output shown after each."""
        commands: list[Command] = []
        lines = iter(self.body)
        for line in lines:
            if line.startswith("$ ") or line == "$":
                text = line[2:]
                while text.endswith("\\"):
                    text += "\n" + next(lines, "")
                heredoc = _HEREDOC.search(text)
                if heredoc:
                    for body_line in lines:
                        text += "\n" + body_line
                        if body_line.strip() == heredoc["word"]:
                            break
                commands.append(Command(text))
            elif not commands:
                raise DocsError(
                    f"{self.where}: a console block starts with {line!r}, not a '$ ' command: "
                    "write its commands after '$ ', or mark it <!-- docs-test: skip REASON -->"
                )
            else:
                shown = commands[-1].shown = commands[-1].shown or []
                shown.append(line)
        return commands


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of the Markdown file ``path``, with the directives above each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    directives: list[tuple[str, str]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        directive = _DIRECTIVE.match(line)
        fence = _FENCE.match(line)
        if directive:
            directives.append((directive["kind"], directive["rest"]))
        elif fence:
            end = index + 1
            closing = re.compile(
                rf"^\s*{re.escape(fence['fence'][0])}{{{len(fence['fence'])},}}\s*$"
            )
            while end < len(lines) and not closing.match(lines[end]):
                end += 1
            indent = len(fence["indent"])
            body = [
                text[indent:] if text[:indent].isspace() else text
                for text in lines[index + 1 : end]
            ]
            found.append(_block(path, index + 1, fence["info"], body, directives))
            directives = []
            index = end
        elif line.strip() and directives:
            raise DocsError(
                f"{path.name}:{index + 1}: a docs-test comment must stand right above a block"
            )
        index += 1
    return found


def _block(
    path: Path, line: int, info: str, body: list[str], directives: list[tuple[str, str]]
) -> Block:
    block = Block(path, line, info, body)
    for kind, rest in directives:
        if kind == "skip":
            if len(rest.split()) < SKIP_REASON_WORDS:
                raise DocsError(
                    f"{block.where}: 'docs-test: skip' needs a reason that says why the block "
                    f"cannot run here (at least {SKIP_REASON_WORDS} words), not {rest!r}"
                )
            block.skip = rest
        elif kind == "before" and rest:
            block.before.append(rest)
        elif kind == "terminal" and not rest:
            block.terminal = True
        elif kind == "excerpt" and rest:
            block.excerpt = rest
        else:
            raise DocsError(f"{block.where}: unknown docs-test comment {kind!r} {rest!r}")
    if block.info in SHELL_LANGUAGES:
        raise DocsError(f"{block.where}: write shell sessions as ```console blocks, not {info}")
    if not block.console and any(text.startswith("$ ") for text in body):
        raise DocsError(
            f"{block.where}: a {info or 'plain'} block with '$ ' commands, which never run: "
            "write it as a ```console block (marked <!-- docs-test: skip REASON --> if it "
            "cannot run here)"
        )
    if block.console and block.excerpt:
        raise DocsError(f"{block.where}: 'docs-test: excerpt' shows a file, not a console")
    if not block.console and (block.skip or block.terminal or (block.before and not block.excerpt)):
        raise DocsError(f"{block.where}: docs-test comments steer console blocks only")
    return block


# -------------------------------------------------------------------- matching
def matches(shown: list[str], printed: list[str]) -> bool:
    """Whether ``printed`` is what ``shown`` shows: ``...`` alone is any lines, and within a
    line any text; trailing spaces and blank lines at the end do not count."""
    shown = _trim(shown)
    printed = _trim(printed)
    if not shown:
        return not printed
    head, *rest = shown
    if head.strip() == "...":
        return any(matches(rest, printed[start:]) for start in range(len(printed) + 1))
    if not printed:
        return False
    pattern = ".*".join(re.escape(part) for part in head.split("..."))
    return bool(re.fullmatch(pattern, printed[0])) and matches(rest, printed[1:])


def _trim(lines: list[str]) -> list[str]:
    trimmed = [line.rstrip() for line in lines]
    while trimmed and not trimmed[-1]:
        trimmed.pop()
    return trimmed


# ----------------------------------------------------------------------- ports
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Ports:
    """The free port that stands in for each port of the pages."""

    def __init__(self) -> None:
        self.map = {port: free_port() for port in DOC_PORTS}

    def rewrite(self, text: str) -> str:
        """``text`` with each page port (after a host or a colon) as its free port; a
        server the page binds to every interface binds to 127.0.0.1 here."""

        def replace(match: re.Match[str]) -> str:
            port = int(match["port"])
            if port not in self.map:
                return match[0]
            host = "127.0.0.1" if match["any"] else ""
            return f"{host}:{self.map[port]}"

        return _PORT.sub(replace, text)


# ----------------------------------------------------------------------- shell
@dataclass
class Server:
    """A serving command started in the background of the page's shell."""

    command: str
    port: int
    pgid: int
    log: Path


class Shell:
    """One bash for a page: commands run in it one after another, in its state."""

    def __init__(self, workdir: Path, env: Mapping[str, str], ports: Ports) -> None:
        self.workdir = workdir
        self.ports = ports
        self.scratch = workdir.parent / f"{workdir.name}.docs-test"
        self.scratch.mkdir(exist_ok=True)
        self.servers: list[Server] = []
        self._count = 0
        self._pending = ""
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=workdir,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        # Job control: each background job gets a process group of its own, to stop it by.
        self._send("set -m; set +o history")

    def _send(self, script: str, timeout: float = COMMAND_TIMEOUT) -> int:
        """Run ``script`` in the shell; return its exit status."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self._count += 1
        token = f"__docs_test_done_{self._count}__"
        self.process.stdin.write(f"{script}\necho {token} $?\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        # Read the pipe itself, not through a buffer that select() cannot see into.
        done = re.compile(rf"^{token} (\d+)$", re.MULTILINE)
        while not (found := done.search(self._pending)):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise DocsError(f"no end of {script!r} within {timeout:g} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise DocsError(f"the shell ended while running {script!r}")
            self._pending += chunk.decode(errors="replace")
        self._pending = self._pending[found.end() :]
        return int(found[1])

    def run(self, command: str) -> tuple[int, list[str]]:
        """Run ``command`` as typed at a prompt; return its status and what it printed."""
        output = self.scratch / f"out-{self._count}.txt"
        status = self._send(f"{{ {command}\n}} </dev/null >{shlex.quote(str(output))} 2>&1")
        return status, output.read_text(encoding="utf-8", errors="replace").splitlines()

    def serve(self, command: str, port: int) -> None:
        """Start the serving ``command`` in the background; return once it listens."""
        doc_port = port
        port = self.ports.map[port]
        for server in [s for s in self.servers if s.port == port]:
            self.stop(server)
        log = self.scratch / f"server-{self._count}.log"
        with self._configs_on_free_ports():
            self._send(
                f"{{ {command}\n}} </dev/null >{shlex.quote(str(log))} 2>&1 &\nDOCS_TEST_JOB=$!"
            )
            pid = int(self.state("echo $DOCS_TEST_JOB"))
            server = Server(command, port, pid, log)
            self.servers.append(server)
            deadline = time.monotonic() + SERVER_TIMEOUT
            while not listening(port):
                if time.monotonic() > deadline or not _group_alive(pid):
                    self.stop(server)
                    text = log.read_text(errors="replace")[-3000:]
                    raise DocsError(
                        f"{command!r} does not listen on its port {doc_port} ({port}):\n{text}"
                    )
                time.sleep(0.1)

    def state(self, script: str) -> str:
        """What ``script`` prints, run in the shell (its working directory, variables)."""
        status, printed = self.run(script)
        if status:
            raise DocsError(f"{script!r} failed: {printed}")
        return "\n".join(printed)

    @contextlib.contextmanager
    def _configs_on_free_ports(self) -> Iterator[None]:
        """The server configs in the shell's directory, on free ports while a server starts."""
        here = Path(self.state("pwd"))
        originals = {
            path: path.read_text(encoding="utf-8")
            for path in (here / name for name in SERVER_CONFIGS)
            if path.is_file()
        }
        try:
            for path, text in originals.items():
                path.write_text(self.ports.rewrite(text), encoding="utf-8")
            yield
        finally:
            for path, text in originals.items():
                path.write_text(text, encoding="utf-8")

    def stop(self, server: Server) -> None:
        """Stop a server this shell started: its process group, by id."""
        if server in self.servers:
            self.servers.remove(server)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pgid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _group_alive(server.pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pgid, signal.SIGKILL)

    def close(self) -> None:
        """Stop every server, then the shell."""
        for server in list(self.servers):
            self.stop(server)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# -------------------------------------------------------------------- terminal
def on_terminal(shell: Shell, command: str, shown: list[str]) -> tuple[int, list[str]]:
    """Run ``command`` on a pseudo-terminal, in the shell's directory and environment,
    answering each prompt ``shown`` with what follows it there; return its status and the
    terminal's text."""
    cwd = shell.state("pwd")
    env = dict(
        item.split("=", 1)
        for item in shell.state("env -0 | tr '\\0' '\\n'").split("\n")
        if "=" in item
    )
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
    )
    os.close(secondary)
    seen = ""
    try:
        for line in shown:
            prompt = _PROMPT.match(line)
            if prompt is None:
                continue
            # The prompt's last character (a space) is written as input() starts reading: an
            # answer typed before it would be echoed in front of it.
            seen = _read_until(primary, prompt["prompt"] + " ", seen)
            os.write(primary, (prompt["answer"] or "").encode() + b"\r")
            seen = _read_until(primary, "\n", seen, after=seen.rindex(prompt["prompt"]))
        status = process.wait(timeout=COMMAND_TIMEOUT)
        seen = _read_rest(primary, seen)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(primary)
    return status, seen.replace("\r\n", "\n").replace("\r", "").splitlines()


def _read_until(fd: int, text: str, seen: str, after: int = 0) -> str:
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while text not in seen[after:]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DocsError(f"no prompt {text!r} on the terminal; it shows:\n{seen}")
        if select.select([fd], [], [], remaining)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                raise DocsError(f"the command ended before {text!r}; the terminal shows:\n{seen}")
            seen += chunk.decode(errors="replace")
    return seen


def _read_rest(fd: int, seen: str) -> str:
    while select.select([fd], [], [], 0.5)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the other end closed: all was read
            break
        if not chunk:
            break
        seen += chunk.decode(errors="replace")
    return seen


# ------------------------------------------------------------------------ pages
@dataclass
class Page:
    """Runs the console blocks of Markdown files in one shell (see the module's docstring).

    ``replace`` maps a command as a page writes it to the command run instead: what a reader
    does with a network (``pip install``) is done offline here.
    """

    workdir: Path
    env: Mapping[str, str]
    replace: Mapping[str, str] = field(default_factory=dict)
    ports: Ports = field(default_factory=Ports)

    def run(self, *paths: Path) -> int:
        """Run every console block of ``paths`` that is not skipped, in order; return how
        many commands ran. Raises `DocsError` listing every block that did not run as
        written."""
        # flask run listens on 5000 unless told otherwise.
        env = {**self.env, "FLASK_RUN_PORT": str(self.ports.map[5000])}
        shell = Shell(self.workdir, env, self.ports)
        failures: list[str] = []
        ran = 0
        try:
            for path in paths:
                for block in blocks(path):
                    if not (block.console or block.excerpt) or block.skip:
                        continue
                    try:
                        if block.excerpt:
                            self._check_excerpt(shell, block)
                        else:
                            ran += self._run_block(shell, block)
                    except DocsError as error:
                        failures.append(str(error))
                        break  # later blocks of the page build on this one
        finally:
            shell.close()
        if failures:
            raise DocsError("\n\n".join(failures))
        return ran

    def _run_before(self, shell: Shell, block: Block) -> None:
        for hidden in block.before:
            status, printed = self._execute(shell, hidden, terminal=False, shown=None)
            if status:
                raise DocsError(
                    f"{block.where}: the hidden step {hidden!r} failed:\n" + "\n".join(printed)
                )

    def _check_excerpt(self, shell: Shell, block: Block) -> None:
        """The block's lines are one run of lines of its file, as the page made it."""
        self._run_before(shell, block)
        assert block.excerpt is not None
        status, printed = shell.run(f"cat -- {shlex.quote(block.excerpt)}")
        if status:
            raise DocsError(
                f"{block.where}: no file {block.excerpt} to show:\n" + "\n".join(printed)
            )
        if not matches(["...", *block.body, "..."], printed):
            raise DocsError(
                f"{block.where}: the page shows lines that {block.excerpt} does not have in "
                "this order:\n"
                + "\n".join(block.body)
                + f"\n{block.excerpt} reads:\n"
                + "\n".join(printed)
            )

    def _run_block(self, shell: Shell, block: Block) -> int:
        self._run_before(shell, block)
        commands = block.commands()
        for command in commands:
            shown = (
                None
                if command.shown is None
                else [self.ports.rewrite(line) for line in command.shown]
            )
            status, printed = self._execute(
                shell, command.text, terminal=block.terminal, shown=shown
            )
            if shown is None and status:
                raise DocsError(
                    f"{block.where}: $ {command.text}\nexited with {status}:\n" + "\n".join(printed)
                )
            if shown is not None and not matches(shown, printed):
                raise DocsError(
                    f"{block.where}: $ {command.text}\nthe page shows:\n"
                    + "\n".join(shown)
                    + f"\nit printed (exit status {status}):\n"
                    + "\n".join(printed)
                )
        return len(commands)

    def _execute(
        self, shell: Shell, command: str, *, terminal: bool, shown: list[str] | None
    ) -> tuple[int, list[str]]:
        command = self.ports.rewrite(self.replace.get(command, command))
        server = next((port for pattern, port in SERVERS if pattern.search(command)), None)
        if server is not None:
            shell.serve(command.removesuffix("&").rstrip(), server)
            return 0, []
        if terminal:
            return on_terminal(shell, command, shown or [])
        return shell.run(command)


def run_markdown(
    path: Path, workdir: Path, env: Mapping[str, str], replace: Mapping[str, str] | None = None
) -> int:
    """Run the console blocks of the Markdown file ``path`` in ``workdir`` (see `Page`)."""
    return Page(workdir, env, replace or {}).run(path)
