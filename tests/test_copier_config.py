"""copier.yml as plain Copier users meet it: its validators, and `copier copy` itself."""

from __future__ import annotations

import filecmp
import keyword
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, TOOLS

QUESTIONS = yaml.safe_load((ROOT / "copier.yml").read_text())


def copier_copy(template: Path, destination: Path, *data: str) -> subprocess.CompletedProcess[str]:
    """Run the real `copier copy` of *template* with ``--data`` answers and defaults."""
    arguments = [arg for answer in data for arg in ("--data", answer)]
    return subprocess.run(
        [
            str(TOOLS / "copier"),
            "copy",
            "--defaults",
            "--quiet",
            "--vcs-ref",
            "HEAD",
            *arguments,
            str(template),
            str(destination),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_reserved_package_names_cover_the_standard_library() -> None:
    reserved = set(QUESTIONS["reserved_package_names"]["default"])
    public_stdlib = {name for name in sys.stdlib_module_names if not name.startswith("_")}
    assert public_stdlib <= reserved
    assert "tests" in reserved


def test_cli_choices_are_the_templates_choices() -> None:
    from scaffold_cli import _names

    assert tuple(QUESTIONS["server"]["choices"].values()) == _names.SERVERS
    assert tuple(QUESTIONS["proxy"]["choices"].values()) == _names.PROXIES
    assert tuple(QUESTIONS["endpoint_styles"]["default"]) == _names.STYLES
    assert tuple(QUESTIONS["endpoint_formats"]["default"]) == _names.FORMATS
    assert tuple(QUESTIONS["endpoint_sources"]["default"]) == _names.SOURCES
    assert tuple(QUESTIONS["channel_formats"]["default"]) == _names.CHANNEL_FORMATS


def test_cli_defaults_are_the_templates_defaults() -> None:
    """The defaults the prompts offer and the help names are copier.yml's."""
    from scaffold_cli import _names

    assert QUESTIONS["server"]["default"] == _names.SERVERS[0]
    assert QUESTIONS["proxy"]["default"] == _names.PROXIES[0]
    assert QUESTIONS["description"]["default"] == _names.DESCRIPTION
    first = QUESTIONS["endpoints"]["default"][0]
    assert first == _names.default_endpoint(_names.FIRST_ENDPOINT, []).to_record()


def test_keywords_match_python() -> None:
    assert sorted(QUESTIONS["python_keywords"]["default"]) == sorted(keyword.kwlist)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("project_name=-bad-", 'project name "-bad-" is not a valid distribution name'),
        ("package_name=json", 'package name "json" would shadow'),
        ("package_name=flask", 'package name "flask" would shadow'),
        ("package_name=class", 'package name "class" is a Python keyword'),
        ("package_name=My-App", 'package name "My-App" is not a lowercase Python identifier'),
        ("server=sync", "sync"),
        (
            "endpoints=[{name: a, path: /a, style: decorator, format: sse, session: true},"
            " {name: a, path: /b, style: decorator, format: sse, session: true}]",
            'endpoint name "a" is taken by another endpoint',
        ),
        (
            "endpoints=[{name: a, path: /x, style: decorator, format: sse, session: true},"
            " {name: b, path: /x, style: decorator, format: sse, session: true}]",
            'endpoint path "/x" is taken by another endpoint',
        ),
        (
            "endpoints=[{name: a, path: x, style: decorator, format: sse, session: true}]",
            'endpoint path "x" must start with "/"',
        ),
        (
            "endpoints=[{name: a, path: /readyz, style: decorator, format: sse, session: true}]",
            'endpoint path "/readyz" is served by the app itself',
        ),
        (
            "endpoints=[{name: metrics, path: /m, style: decorator, format: sse, session: true}]",
            'endpoint name "metrics" is reserved by the template',
        ),
        (
            "endpoints=[{name: Bad, path: /x, style: decorator, format: sse, session: true}]",
            'endpoint name "Bad" is not a snake_case identifier',
        ),
        (
            "endpoints=[{name: import, path: /x, style: decorator, format: sse, session: true}]",
            'endpoint name "import" is a Python keyword',
        ),
        (
            "endpoints=[{name: a, path: /x, style: inline, format: sse, session: true}]",
            'endpoint "a": style must be decorator or wrapper, not "inline"',
        ),
        (
            "endpoints=[{name: a, path: /x, style: wrapper, format: xml, session: true}]",
            'endpoint "a": format must be sse, ndjson or text, not "xml"',
        ),
        (
            "endpoints=[{name: a, path: /x, style: wrapper, format: sse, session: maybe}]",
            'endpoint "a": session must be true or false',
        ),
        (
            "endpoints=[{name: a, path: /x, style: wrapper, format: sse}]",
            "endpoint #1 must have exactly the keys name, path, style, format and session, "
            "and may have source",
        ),
        (
            "endpoints=[{name: a, path: /x, style: wrapper, format: sse, session: true,"
            " source: feed}]",
            'endpoint "a": source must be ticks or channel, not "feed"',
        ),
        (
            "endpoints=[{name: a, path: /x, style: wrapper, format: text, session: true,"
            " source: channel}]",
            'endpoint "a": a channel streams sse or ndjson, not "text"',
        ),
        ("endpoints=[]", "at least one endpoint is needed"),
    ],
)
def test_invalid_answers_are_refused_with_a_clear_message(
    tmp_path: Path, template_snapshot: Path, answer: str, message: str
) -> None:
    result = copier_copy(template_snapshot, tmp_path / "project", answer)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "project" / "pyproject.toml").exists()


@pytest.mark.slow
def test_plain_copier_copy_gives_the_same_project_as_the_cli(
    tmp_path: Path, template_snapshot: Path
) -> None:
    by_copier = tmp_path / "by-copier" / "demo"
    by_cli = tmp_path / "by-cli" / "demo"
    result = copier_copy(template_snapshot, by_copier)
    assert result.returncode == 0, result.stderr
    cli = subprocess.run(
        [
            str(TOOLS / "stream-scaffold"),
            "new",
            str(by_cli),
            "--defaults",
            "--no-git",
            "--name",
            "stream-demo",
            "--template",
            str(template_snapshot),
            "--vcs-ref",
            "HEAD",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    assert_same_tree(by_copier, by_cli)


def assert_same_tree(left: Path, right: Path) -> None:
    comparison = filecmp.dircmp(left, right)
    assert comparison.left_only == comparison.right_only == []
    _, mismatch, errors = filecmp.cmpfiles(left, right, comparison.common_files, shallow=False)
    assert mismatch == errors == []
    for directory in comparison.common_dirs:
        assert_same_tree(left / directory, right / directory)
