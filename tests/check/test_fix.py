"""``check --fix`` and ``--diff``: each fix leaves no finding of its kind, code that still
parses (nginx configurations that ``nginx -t`` accepts), nothing to do a second time, and
what it cannot fix reported as it was."""

from __future__ import annotations

import ast
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.stack import nginx_binary
from scaffold_cli._cli import app
from scaffold_cli.check import check_paths, fix_paths

from .test_rules import CORPUS

runner = CliRunner()
# Rules with a fix, and what their bad case keeps after it (findings no fix can make).
FIXED = {
    "FS101": Counter(),
    "FS102": Counter(),
    "FS111": Counter(),
    "FS120": Counter({"FS120": 1}),  # Content-Length: what the code sends is not mechanical
    "FS121": Counter(),
    "FS201": Counter({"FS201": 3}),  # Procfile, compose and Dockerfile command lines
    "FS301": Counter(),
    "FS302": Counter(),
    "FS304": Counter(),
    "FS320": Counter(),
}


def copy(code: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(CORPUS / code / "bad", tmp_path / code))


def texts(root: Path) -> dict[Path, str]:
    return {p: p.read_text(errors="replace") for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("code", FIXED)
def test_each_fix_leaves_no_finding_of_its_kind_and_code_that_parses(
    code: str, tmp_path: Path
) -> None:
    project = copy(code, tmp_path)
    before = check_paths([project])
    fixes = fix_paths([project])
    assert fixes.fixed == sum(bool(f.fix) for f in before) > 0
    assert Counter(f.code for f in fixes.remaining) == FIXED[code]
    assert Counter(f.code for f in check_paths([project])) == FIXED[code]  # as written
    for path in fixes.changed:
        if path.suffix == ".py":
            ast.parse(path.read_text(), filename=str(path))
    # Idempotent: nothing left to fix, nothing changes.
    written = texts(project)
    again = fix_paths([project])
    assert (again.fixed, again.changed) == (0, {})
    assert texts(project) == written


def test_unfixable_findings_are_left_alone_and_reported(tmp_path: Path) -> None:
    project = copy("FS120", tmp_path)
    fixes = fix_paths([project])
    (left,) = fixes.remaining
    assert (left.code, left.fix) == ("FS120", ())
    assert "Content-Length" in left.message
    assert 'response.headers["Content-Length"] = "100"' in (project / "app.py").read_text()
    project = copy("FS201", tmp_path)
    procfile = (project / "Procfile").read_text()
    fixes = fix_paths([project])
    assert {f.path.name for f in fixes.remaining} == {"Procfile", "compose.yaml", "Dockerfile"}
    assert (project / "Procfile").read_text() == procfile
    assert "gthread" in (project / "deploy" / "gunicorn_prod.py").read_text()


def test_a_fix_follows_the_style_the_module_uses(tmp_path: Path) -> None:
    """Decorator style where the module decorates, the wrapper where it wraps."""
    source = """from flask import Flask, Response, request, stream_with_context

app = Flask(__name__)


@app.get("/a")
def a():
    def generate():
        yield request.path

    return Response({wrapped}, mimetype="text/plain")


@app.get("/b")
def b():
    def generate():
        yield request.path

    return Response(generate(), mimetype="text/plain")
"""
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text(source.format(wrapped="stream_with_context(generate())"))
    fix_paths([project])
    assert (
        "return Response(stream_with_context(generate()), mimetype"
        in ((project / "app.py").read_text().split('@app.get("/b")')[1])
    )
    (project / "app.py").write_text(
        source.format(wrapped="generate()").replace(
            "def a():\n    def generate", "def a():\n    @stream_with_context\n    def generate"
        )
    )
    fix_paths([project])
    fixed = (project / "app.py").read_text().split('@app.get("/b")')[1]
    assert "    @stream_with_context\n    def generate():" in fixed
    assert check_paths([project]) == []


def test_the_import_is_added_once_in_sorted_place(tmp_path: Path) -> None:
    project = copy("FS101", tmp_path)
    fix_paths([project])
    first = (project / "app.py").read_text().splitlines()[2]
    assert first == (
        "from flask import Flask, Response, current_app, g, render_template, request, "
        "session, stream_with_context, url_for"
    )


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")
@pytest.mark.parametrize("code", ["FS301", "FS302", "FS304"])
def test_fixed_nginx_configurations_pass_nginx_t(code: str, tmp_path: Path) -> None:
    project = copy(code, tmp_path)
    fix_paths([project])
    (project / "logs").mkdir()
    binary = nginx_binary()
    assert binary is not None
    done = subprocess.run(
        [
            binary,
            "-t",
            "-p",
            f"{project}/",
            "-c",
            str(project / "nginx.conf"),
            "-e",
            "logs/error.log",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_diff_prints_the_changes_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy("FS121", tmp_path)
    before = texts(project)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["check", "--diff", "FS121"])
    assert result.exit_code == 1
    assert result.stdout.startswith("--- a/FS121/app.py\n+++ b/FS121/app.py\n")
    assert '+    return Response(events(), mimetype="text/event-stream", headers={' in result.stdout
    assert result.stderr == "Would fix 2 findings.\n"
    assert texts(project) == before


def test_fix_reports_what_is_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy("FS120", tmp_path)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["check", "--fix", "FS120"])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == "Fixed 2 findings, 1 remaining."
    assert result.stdout.startswith("FS120/app.py:20:5: FS120 `Content-Length` header")
    clean = runner.invoke(app, ["check", "--fix", "--ignore", "FS120", "FS120"])
    assert (clean.exit_code, clean.stdout) == (0, "All checks passed.\n")


@pytest.mark.parametrize(
    ("call", "fixed"),
    [
        (
            "Response(events(), mimetype='text/event-stream')",
            "Response(events(), mimetype='text/event-stream', "
            "headers={'X-Accel-Buffering': 'no', 'Cache-Control': 'no-cache'})",
        ),
        (
            'Response(\n        events(),\n        mimetype="text/event-stream"\n    )',
            'Response(\n        events(),\n        mimetype="text/event-stream",\n'
            '        headers={"X-Accel-Buffering": "no", "Cache-Control": "no-cache"}\n    )',
        ),
        (
            'Response(\n        events(),\n        mimetype="text/event-stream",\n    )',
            'Response(\n        events(),\n        mimetype="text/event-stream",\n'
            '        headers={"X-Accel-Buffering": "no", "Cache-Control": "no-cache"},\n    )',
        ),
    ],
)
def test_added_headers_follow_the_calls_quotes_and_layout(
    call: str, fixed: str, tmp_path: Path
) -> None:
    source = (
        "from flask import Flask, Response\n\napp = Flask(__name__)\n\n\n"
        "def events():\n    yield 'data: 1\\n\\n'\n\n\n"
        '@app.get("/events")\ndef stream():\n    return {call}\n'
    )
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text(source.format(call=call))
    fix_paths([project])
    assert (project / "app.py").read_text() == source.format(call=fixed)
