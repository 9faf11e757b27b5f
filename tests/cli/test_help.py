"""The help pages and shell completion: option values are named, choices are listed."""

from __future__ import annotations

import itertools
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


def _help_at_80_columns(command: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    result = invoke(*command.split(), "--help")
    assert result.exit_code == 0, result
    return result.stdout


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_paragraphs_wrap_at_the_terminal_width_only(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _help_at_80_columns(command, monkeypatch)
    prose = text.split("╭")[0].splitlines()
    width = 80 - 2  # rich pads the text by one column on each side
    for line, following in itertools.pairwise(prose):
        if line.strip() and following.strip() and "Usage:" not in line:
            # A line broken early: the next line's first word would have fitted on it.
            assert len(line.strip()) + 1 + len(following.split()[0]) > width, (line, following)


@pytest.mark.parametrize("command", COMMANDS)
def test_choices_are_shown_whole_at_80_columns(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _help_at_80_columns(command, monkeypatch)
    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    for param in click_command.params:
        choices = param.type_descriptor.choices if param.type_descriptor.is_choice else ()
        if choices and not getattr(param, "hidden", False):
            assert "|".join(map(str, choices)) in text, (param.name, text)
