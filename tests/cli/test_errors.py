"""Only user errors become one-line messages; a bug surfaces with its traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import pytest

from .conftest import assert_user_error, invoke


@pytest.mark.parametrize("error", [TypeError("a bug"), ValueError("a bug"), OSError("a bug")])
def test_a_programming_error_inside_a_render_is_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    import copier

    def broken(*args: Any, **kwargs: Any) -> NoReturn:
        raise error

    monkeypatch.setattr(copier, "run_copy", broken)
    with pytest.raises(type(error), match="a bug"):
        invoke("new", tmp_path / "proj", "-y")
    assert not (tmp_path / "proj").exists()


def test_an_error_copier_raises_for_the_user_is_one_line(tmp_path: Path) -> None:
    result = invoke("new", tmp_path / "proj", "-y", "--vcs-ref", "no-such-version")
    assert_user_error(result, "rendering the template failed", "no-such-version")
    assert not (tmp_path / "proj").exists()
