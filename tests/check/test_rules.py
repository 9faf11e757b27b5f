"""Every rule of ``stream-scaffold check`` on the corpus: found where it is, and only there.

``corpus/<CODE>/bad`` and ``corpus/<CODE>/good`` are small projects written for one rule each:
the bad one breaks that rule (in several ways), the good one does the same job correctly. Each
directory is checked as a project of its own; ``corpus.expected`` holds every finding of the
whole corpus, one directory after the other.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from scaffold_cli.check import RULES, check_paths, render

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
GOLDEN = HERE / "corpus.expected"


def corpus_output() -> str:
    """The text report of each corpus directory, paths relative to the corpus; the Python
    version in FS001's messages reads ``Python 3.x``, so the file holds for every version."""
    parts = []
    cwd = Path.cwd()
    os.chdir(CORPUS)
    try:
        for case in sorted(CORPUS.glob("FS*/*")):
            relative = case.relative_to(CORPUS)
            parts.append(f"== {relative.as_posix()}\n{render(check_paths([relative]), 'text')}")
    finally:
        os.chdir(cwd)
    return re.sub(r"Python 3\.\d+ cannot parse", "Python 3.x cannot parse", "".join(parts))


def test_the_corpus_gives_exactly_the_expected_findings() -> None:
    assert corpus_output() == GOLDEN.read_text(encoding="utf-8")


def test_the_corpus_covers_every_rule_and_nothing_else() -> None:
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted(RULES)


@pytest.mark.parametrize("code", RULES)
def test_each_rule_fires_on_its_bad_case_only(code: str) -> None:
    bad = check_paths([CORPUS / code / "bad"])
    assert bad, f"{code} found nothing in its bad case"
    assert {f.code for f in bad} == {code}


@pytest.mark.parametrize("code", RULES)
def test_each_good_case_is_clean(code: str) -> None:
    assert check_paths([CORPUS / code / "good"]) == []


def test_a_comment_suppresses_one_code_on_its_line(tmp_path: Path) -> None:
    project = tmp_path / "app"
    shutil.copytree(CORPUS / "FS110" / "bad", project)
    source = project / "app.py"
    lines = source.read_text().splitlines()
    assert lines[13].strip().startswith('session["n"]')
    lines[13] += "  # stream-scaffold: ignore[FS110]"
    lines[14] += "  # stream-scaffold: ignore[FS101, FS999]"  # other codes: still reported
    source.write_text("\n".join(lines) + "\n")

    assert [(f.line, f.code) for f in check_paths([project])] == [(15, "FS110"), (16, "FS110")]


def test_select_and_ignore_take_codes_and_prefixes() -> None:
    everything = check_paths([CORPUS / "FS201" / "bad", CORPUS / "FS301" / "bad"])
    assert {f.code for f in everything} == {"FS201", "FS301"}
    only_proxy = check_paths([CORPUS / "FS201" / "bad", CORPUS / "FS301" / "bad"], select=["FS3"])
    assert {f.code for f in only_proxy} == {"FS301"}
    ignored = check_paths([CORPUS / "FS201" / "bad", CORPUS / "FS301" / "bad"], ignore=["FS301"])
    assert {f.code for f in ignored} == {"FS201"}


def test_the_nginx_rules_need_the_routes_from_the_code(tmp_path: Path) -> None:
    """Without the app, nothing tells nginx's locations apart: no stream, no FS3xx finding."""
    shutil.copy(CORPUS / "FS301" / "bad" / "nginx.conf", tmp_path / "nginx.conf")
    assert check_paths([tmp_path]) == []
    shutil.copy(CORPUS / "FS301" / "bad" / "app.py", tmp_path / "app.py")
    assert {f.code for f in check_paths([tmp_path])} == {"FS301"}


def test_an_included_file_is_checked_once_as_part_of_its_includer() -> None:
    findings = check_paths([CORPUS / "FS303" / "bad"])
    assert sorted(f.path.name for f in findings) == ["nginx.conf", "ticker.conf"]


def write_app(directory: Path, source: str, **others: str) -> Path:
    """A project of one ``app.py`` (and *others*, by file name) in *directory*."""
    directory.mkdir(exist_ok=True)
    (directory / "app.py").write_text(source)
    for name, text in others.items():
        (directory / name).write_text(text)
    return directory


def test_a_response_with_an_uncalled_generator_is_judged_for_its_headers_too(
    tmp_path: Path,
) -> None:
    source = """from flask import Flask, Response, stream_with_context

app = Flask(__name__)


@app.get("/events")
def events():
    def generate():
        yield "data: 1\\n\\n"

    return Response(
        stream_with_context(generate),
        mimetype="text/event-stream",
        headers={"Connection": "keep-alive", "Cache-Control": "no-cache"},
    )
"""
    found = [(f.line, f.code) for f in check_paths([write_app(tmp_path / "app", source)])]
    assert found == [(12, "FS102"), (12, "FS121"), (14, "FS120")]


COMPRESSED = """from flask import Flask, Response
from flask_compress import Compress

app = Flask(__name__)
{settings}
Compress(app)


@app.get("/events")
def events():
    def generate():
        yield "data: 1\\n\\n"

    return Response(generate(), mimetype="{mimetype}", headers={{"Cache-Control": "no-cache"}})
"""


@pytest.mark.parametrize(
    ("settings", "mimetype", "reported"),
    [
        ("", "text/event-stream", False),  # not in Flask-Compress's default types
        ("", "application/x-ndjson", False),
        ("", "text/plain", True),
        ("", "text/html; charset=utf-8", True),
        ('app.config["COMPRESS_MIMETYPES"] = ["text/event-stream"]', "text/event-stream", True),
        ('app.config["COMPRESS_MIMETYPES"] = ["application/json"]', "text/plain", False),
        ('app.config["COMPRESS_MIMETYPES"] = TYPES', "text/plain", False),  # not known here
        ('app.config["COMPRESS_STREAMS"] = False', "text/plain", False),
        ('app.config["COMPRESS_REGISTER"] = False', "text/plain", False),
    ],
)
def test_flask_compress_is_judged_by_the_types_it_compresses(
    tmp_path: Path, settings: str, mimetype: str, reported: bool
) -> None:
    source = COMPRESSED.format(settings=settings, mimetype=mimetype)
    codes = {f.code for f in check_paths([write_app(tmp_path / "app", source)], select=["FS140"])}
    assert codes == ({"FS140"} if reported else set())
