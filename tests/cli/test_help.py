"""The help pages and shell completion: option values are named, choices are listed."""

from __future__ import annotations

import os
import re

import pytest
import typer

from scaffold_cli._cli import app

from .conftest import invoke, run_script

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_names_values_not_python_types(command: str) -> None:
    result = invoke(*command.split(), "--help")
    assert result.exit_code == 0, result
    # Typer's defaults label parameters with their Python type and brace required arguments.
    assert not re.search(r"<(bool|str|path|int|directory)>", result.stdout), result.stdout
    usage = next(line for line in result.stdout.splitlines() if "Usage:" in line)
    assert "{" not in usage, usage


def test_choice_options_list_their_choices() -> None:
    new = invoke("new", "--help").stdout
    assert "decorator|wrapper" in new
    assert "sse|ndjson|text" in new
    assert "gthread|gevent" in new
    assert "inline|rej" in invoke("update", "--help").stdout
    assert "decorator|wrapper" in invoke("add-endpoint", "--help").stdout


def test_install_completion_is_offered() -> None:
    root = invoke("--help").stdout
    assert "--install-completion" in root
    assert "--show-completion" in root


def test_shell_completion_lists_the_choices() -> None:
    env = {
        **os.environ,
        "_STREAM_SCAFFOLD_COMPLETE": "complete_bash",
        "COMP_WORDS": "stream-scaffold new demo --format ",
        "COMP_CWORD": "4",
    }
    result = run_script(env=env)
    assert result.exit_code == 0, result
    assert result.stdout.split() == ["sse", "ndjson", "text"]
