"""Every rule of ``stream-scaffold check`` on the corpus: found where it is, and only there.

``corpus/<CODE>/bad`` and ``corpus/<CODE>/good`` are small projects written for one rule each:
the bad one breaks that rule (in several ways), the good one does the same job correctly. Each
directory is checked as a project of its own; ``corpus.expected`` holds every finding of the
whole corpus, one directory after the other.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from scaffold_cli.check import RULES, check_paths, render

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
GOLDEN = HERE / "corpus.expected"


def corpus_output() -> str:
    """The text report of each corpus directory, paths relative to the corpus."""
    parts = []
    cwd = Path.cwd()
    os.chdir(CORPUS)
    try:
        for case in sorted(CORPUS.glob("FS*/*")):
            relative = case.relative_to(CORPUS)
            parts.append(f"== {relative.as_posix()}\n{render(check_paths([relative]), 'text')}")
    finally:
        os.chdir(cwd)
    return "".join(parts)


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
