"""docs/check.md documents every rule, with its level and message, and its examples are true:
each rule's bad example gives exactly that rule's findings, its good example none."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scaffold_cli.check import RULES, check_paths
from tests.conftest import ROOT

PAGE = (ROOT / "docs" / "check.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"```(python|nginx|caddy|apache)\n(.*?)```", re.DOTALL)
CONFIG_FILES = {"nginx": "nginx.conf", "caddy": "Caddyfile", "apache": "apache.conf"}


def sections() -> dict[str, str]:
    parts = re.split(r"(?m)^### (FS\d+) ", PAGE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def files(text: str) -> dict[str, str]:
    """The code blocks of *text* as project files: app.py, gunicorn.conf.py, and the proxy's
    configuration (nginx.conf, Caddyfile, apache.conf)."""
    found = {}
    for language, code in BLOCK.findall(text):
        if language in CONFIG_FILES:
            found[CONFIG_FILES[language]] = code
        elif code.startswith("# gunicorn.conf.py"):
            found["gunicorn.conf.py"] = code
        else:
            found["app.py"] = code
    return found


def examples() -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Per rule: the bad and the good project (with the app of the rules before it if shared)."""
    shared: dict[str, str] = {}
    cases = {}
    for code, text in sections().items():
        context, _, rest = text.partition("**Bad**")
        bad, _, good = rest.partition("**Good**")
        shared = files(context) or shared
        cases[code] = ({**shared, **files(bad)}, {**shared, **files(good)})
    return cases


def test_every_rule_has_a_section_with_its_name_level_and_message() -> None:
    found = sections()
    assert list(found) == list(RULES)
    for code, rule in RULES.items():
        heading, _, body = found[code].partition("\n")
        assert heading == rule.name
        assert f"Level: {rule.level.value}. Message: `` {rule.message} ``" in body


def write(directory: Path, project: dict[str, str]) -> Path:
    directory.mkdir()
    for name, text in project.items():
        (directory / name).write_text(text)
    return directory


@pytest.mark.parametrize("code", RULES)
def test_the_examples_are_true(code: str, tmp_path: Path) -> None:
    bad, good = examples()[code]
    assert bad and good
    assert {f.code for f in check_paths([write(tmp_path / "bad", bad)])} == {code}
    assert check_paths([write(tmp_path / "good", good)]) == []
