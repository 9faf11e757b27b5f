"""probe's options that are refused before any connection is made."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from scaffold_cli._cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-H", "no colon here"], "Error: bad --header 'no colon here': write it as 'Name: value'"),
        (["-H", ": empty name"], "Error: bad --header ': empty name'"),
    ],
)
def test_a_bad_header_is_refused_in_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["probe", *args, "http://127.0.0.1:9/events"])
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("args", [["--timeout", "0"], ["--events", "0"]])
def test_limits_must_be_positive(args: list[str]) -> None:
    result = runner.invoke(app, ["probe", *args, "http://127.0.0.1:9/events"])
    assert result.exit_code == 2
    assert "Invalid value for" in " ".join(result.stderr.replace("│", " ").split())
