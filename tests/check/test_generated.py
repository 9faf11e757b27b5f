"""Every project this tool generates passes ``check`` with no finding, and not vacuously:
the same projects, with one streaming safeguard undone at a time, are caught."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from scaffold_cli.check import check_paths
from tests.test_render import PROJECTS, rendered

__all__ = ["rendered"]  # the session fixture, shared with the render tests


@pytest.mark.parametrize("project", PROJECTS)
def test_generated_projects_have_no_findings(rendered: dict[str, Path], project: str) -> None:
    assert check_paths([rendered[project]]) == []


def edit(path: Path, pattern: str, replacement: str) -> None:
    text, count = re.subn(pattern, replacement, path.read_text())
    assert count, f"{pattern!r} not found in {path}"
    path.write_text(text)


@pytest.mark.parametrize("project", PROJECTS)
def test_undoing_each_safeguard_is_caught(
    rendered: dict[str, Path], project: str, tmp_path: Path
) -> None:
    root = shutil.copytree(rendered[project], tmp_path / "project")
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    package = root / "src" / answers["package_name"]
    endpoints = answers["endpoints"]
    for endpoint in endpoints:
        module = package / "endpoints" / f"{endpoint['name']}.py"
        if endpoint["style"] == "decorator":
            edit(module, r"\n *@stream_with_context[^\n]*\n", "\n")
        else:
            edit(module, r"stream_with_context\(generate\((.*?)\)\)", r"generate(\1)")
    gunicorn_conf = root / "deploy" / "gunicorn.conf.py"
    edit(gunicorn_conf, r'worker_class = "\w+"', 'worker_class = "sync"')
    if answers["server"] == "gthread":
        edit(gunicorn_conf, r"\nthreads = \d+", "")  # a sync worker with threads is gthread
    expected = Counter({"FS101": len(endpoints), "FS201": 1})
    if answers["proxy"] == "nginx":
        edit(root / "deploy" / "nginx.conf", r"proxy_read_timeout \w+;", "proxy_read_timeout 15s;")
        edit(root / "deploy" / "nginx.conf", r"proxy_buffering off;", "proxy_buffering on;")
        edit(package / "streaming.py", r'\n *response\.headers\["X-Accel-Buffering"\] = "no"', "")
        # One finding each: every endpoint is served by the one shared location.
        expected.update({"FS303": 1, "FS301": 1})

    assert Counter(f.code for f in check_paths([root])) == expected
