"""``stream-scaffold check`` as a user runs it: output formats, exit status, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scaffold_cli._cli import app

from .test_rules import CORPUS

runner = CliRunner()


def run(*args: str, cwd: Path = CORPUS, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    monkeypatch.chdir(cwd)
    result = runner.invoke(app, ["check", *args])
    return result.exit_code, result.stdout, result.stderr


def test_text_is_path_line_column_code_message(monkeypatch: pytest.MonkeyPatch) -> None:
    status, out, err = run("FS121/bad", monkeypatch=monkeypatch)
    assert status == 1
    assert err == ""
    assert out.splitlines() == [
        "FS121/bad/app.py:14:21: FS121 [*] event stream without X-Accel-Buffering: no and "
        "Cache-Control: no-cache: add it so proxies and caches pass events on live",
        "FS121/bad/app.py:19:21: FS121 [*] event stream without X-Accel-Buffering: no: "
        "add it so proxies and caches pass events on live",
        "Found 2 findings (2 info).",
        "[*] 2 fixable with the `--fix` option.",
    ]


def test_clean_is_exit_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("FS101/good", "FS150/good", monkeypatch=monkeypatch) == (
        0,
        "All checks passed.\n",
        "",
    )


def test_json_lists_every_finding_with_its_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    status, out, _ = run("--format", "json", "FS150/bad", monkeypatch=monkeypatch)
    assert status == 1
    records = json.loads(out)
    assert [(r["code"], r["line"], r["column"]) for r in records] == [
        ("FS150", 12, 33),
        ("FS150", 19, 12),
    ]
    assert records[0]["path"] == "FS150/bad/reader.py"
    assert records[0]["level"] == "error"
    assert records[0]["name"] == "redis-socket-timeout"
    assert "socket_timeout is 5 s" in records[0]["message"]


def test_json_of_a_clean_project_is_an_empty_list(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("--format", "json", "FS150/good", monkeypatch=monkeypatch)[:2] == (0, "[]\n")


def test_github_format_is_workflow_annotations(monkeypatch: pytest.MonkeyPatch) -> None:
    status, out, _ = run("--format", "github", "FS202/bad", "FS121/bad", monkeypatch=monkeypatch)
    assert status == 1
    lines = out.splitlines()
    assert lines[0] == (
        "::notice file=FS121/bad/app.py,line=14,col=21,title=FS121::FS121 event stream without "
        "X-Accel-Buffering: no and Cache-Control: no-cache: add it so proxies and caches pass "
        "events on live"
    )
    assert lines[2].startswith(
        "::warning file=FS202/bad/Dockerfile,line=5,col=5,title=FS202::FS202 gthread"
    )
    assert len(lines) == 5


def test_select_and_ignore_on_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    status, out, _ = run(
        "--select",
        "FS2,FS3",
        "--ignore",
        "FS201",
        "FS201/bad",
        "FS301/bad",
        "FS110/bad",
        monkeypatch=monkeypatch,
    )
    assert status == 1
    assert {line.split()[1] for line in out.splitlines() if ": FS" in line} == {"FS301"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing/dir"], "Error: missing/dir: no such file or directory"),
        (["--select", "FS9", "."], "Error: unknown rule code 'FS9': use one of FS001"),
        (["--ignore", "E501", "."], "Error: unknown rule code 'E501'"),
    ],
)
def test_could_not_run_is_exit_two_with_one_line(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, err = run(*args, monkeypatch=monkeypatch)
    assert status == 2
    assert out == ""
    assert err.startswith(message)
    assert len(err.splitlines()) == 1


def test_an_unknown_format_is_a_usage_error_listing_the_formats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    status, out, err = run("--format", "xml", ".", monkeypatch=monkeypatch)
    message = " ".join(err.replace("│", " ").split())
    assert (status, out) == (2, "")
    assert "Invalid value for '--format'" in message
    assert "'xml' is not one of 'text', 'json', 'github', 'sarif'" in message
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "app.py",
            "import flask\nflask.Response(iter(()))\ndef view(:\n    pass\n",
            "app.py:3:10: FS001 Python 3.",
        ),
        (
            "nginx.conf",
            "http {\n    server {\n        location / {\n}\n",
            "nginx.conf:4:1: FS001 unexpected end of file, a '}' is missing",
        ),
        (
            "site.conf",
            'server {\n    location / { return 200 "x; }\n}\n',
            "site.conf:2:29: FS001 unterminated quoted string",
        ),
        (
            "nginx.conf",
            "server {\n    listen 80\n}\n",
            "nginx.conf:2:5: FS001 directive 'listen' has no ';'",
        ),
    ],
)
def test_a_file_that_cannot_be_parsed_is_a_finding_and_the_rest_is_checked(
    tmp_path: Path, name: str, text: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(CORPUS / "FS101" / "bad" / "app.py", tmp_path / "streams.py")
    (tmp_path / name).write_text(text)
    status, out, err = run(".", cwd=tmp_path, monkeypatch=monkeypatch)
    lines = out.splitlines()
    assert (status, err) == (1, "")
    assert lines[0].startswith(message)
    assert lines[0].endswith("(this file was left out of the check)")
    rest = {line.split()[1] for line in lines[1:] if ": FS" in line}
    assert rest == {"FS101"}  # the rest: checked


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12 parses nested quotes")
def test_syntax_of_a_newer_python_is_a_finding_that_names_the_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PEP 701 lets an f-string reuse its quotes from Python 3.12 on; 3.11 cannot parse it."""
    source = 'from flask import Flask\n\napp = Flask(__name__)\n\n\n@app.get("/")\ndef lines():\n'
    (tmp_path / "run.py").write_text(source + '    yield f"{dict(s="x")}"\n')
    status, out, _ = run(".", cwd=tmp_path, monkeypatch=monkeypatch)
    assert status == 1
    assert out.startswith("run.py:8:")
    assert "FS001 Python 3.11 cannot parse it: f-string: " in out


def test_files_that_only_mention_nginx_are_not_read_as_nginx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "nginx.rst").write_text("Then add ``proxy_buffering off`` to the location\n")
    (tmp_path / "supervisord.conf").write_text("[program:web]\ncommand=gunicorn app:app\n")
    (tmp_path / "apache.conf").write_text("<Location /events>\n  SetEnv no-gzip 1\n</Location>\n")
    assert run(".", cwd=tmp_path, monkeypatch=monkeypatch) == (0, "All checks passed.\n", "")


def test_the_installed_console_script() -> None:
    script = Path(sys.executable).parent / "stream-scaffold"
    done = subprocess.run(
        [str(script), "check", "--format", "json", "FS110/bad", "FS110/good"],
        cwd=CORPUS,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (1, "")
    assert [r["line"] for r in json.loads(done.stdout)] == [14, 15, 16]
