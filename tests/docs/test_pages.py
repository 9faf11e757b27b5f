"""Every console block of README.md and docs/*.md runs as written, or says why it does not.

Each page runs in a directory of its own, in one shell, as a reader following it would run
it (see `tests.docs.runner`): ``stream-scaffold`` renders the template as it is on disk (a
snapshot tagged v0.1.0), servers listen on free ports of 127.0.0.1, and what a reader would
fetch from the network is done offline.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT, TOOLS

from .runner import Page, blocks

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# What a reader does with the network, done offline: the project's dev install links the
# suite's packages instead of downloading them.
OFFLINE = {
    # The virtualenv gets its packages from the suite's, without pip of its own.
    "python -m venv .venv && . .venv/bin/activate": (
        "python -m venv --without-pip .venv && . .venv/bin/activate"
    ),
    'pip install -e ".[dev]"': (
        f"python {ROOT / 'tests' / 'docs' / 'offline_dev_install.py'} "
        f"{sysconfig.get_paths()['purelib']} {TOOLS}"
    ),
}


def reader_environment(home: Path, template: Path) -> dict[str, str]:
    """A reader's environment: their own HOME with a git identity, the CLI of this checkout
    on PATH (with the system's sbin, where nginx and apache2 live), the template snapshot as
    the installed template."""
    home.mkdir(parents=True, exist_ok=True)
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Docs Reader\n\temail = reader@example.invalid\n"
        "[init]\n\tdefaultBranch = main\n",
        encoding="utf-8",
    )
    # curl shows no progress meter on a terminal; here its output goes to a file.
    (home / ".curlrc").write_text("no-progress-meter\n", encoding="utf-8")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH", "GIT_DIR", "GIT_WORK_TREE", "COLUMNS"}
        and not key.startswith(("PYTEST_", "FLASK_", "GUNICORN_"))
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
        STREAM_SCAFFOLD_TEMPLATE=str(template),
        PATH=os.pathsep.join([str(TOOLS), env.get("PATH", ""), "/usr/local/sbin:/usr/sbin:/sbin"]),
    )
    return env


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_the_page_runs_as_written(page: Path, tmp_path: Path, template_snapshot: Path) -> None:
    workdir = tmp_path / "reader"
    workdir.mkdir()
    env = reader_environment(tmp_path / "home", template_snapshot)
    Page(workdir, env, OFFLINE).run(page)


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_block_runs_or_says_why_not(page: Path) -> None:
    """Fast, without running the page: no block holds commands that would not run, and
    every skip says why (the runner's rules, tests/docs/test_runner.py)."""
    blocks(page)  # raises DocsError on a block that breaks them
