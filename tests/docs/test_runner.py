"""The docs runner itself: it fails a page that does not run as written, and every block it
does not run is marked with a reason.

Each test runs a small page of its own, in a bash of its own, so each failure is shown to be
the runner's doing: the same page with the one fault removed passes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .runner import DocsError, Page, blocks, matches


def run_page(tmp_path: Path, markdown: str) -> int:
    """Run ``markdown`` as a page in ``tmp_path/work``; return how many commands ran."""
    page = tmp_path / "page.md"
    page.write_text(markdown, encoding="utf-8")
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return Page(workdir, {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}).run(page)


def console(*lines: str, above: str = "") -> str:
    """A console block of ``lines``, with the comments ``above`` it."""
    return f"{above}\n```console\n" + "\n".join(lines) + "\n```\n"


# ------------------------------------------------------------------ output
def test_output_as_shown_passes(tmp_path: Path) -> None:
    assert run_page(tmp_path, console("$ echo hello", "hello")) == 1


def test_wrong_output_fails(tmp_path: Path) -> None:
    with pytest.raises(DocsError, match=r"page\.md:2: \$ echo hello\nthe page shows:\ngoodbye"):
        run_page(tmp_path, console("$ echo hello", "goodbye"))


def test_missing_and_extra_lines_fail(tmp_path: Path) -> None:
    with pytest.raises(DocsError, match="the page shows"):
        run_page(tmp_path, console("$ printf 'a\\nb\\n'", "a"))
    with pytest.raises(DocsError, match="the page shows"):
        run_page(tmp_path, console("$ echo a", "a", "b"))


def test_a_failing_command_fails_unless_its_output_is_shown(tmp_path: Path) -> None:
    with pytest.raises(DocsError, match="exited with 3"):
        run_page(tmp_path, console("$ echo oops; (exit 3)"))
    # Shown output says what the reader sees, an error included: the page expects the failure.
    assert run_page(tmp_path, console("$ echo oops >&2; (exit 3)", "oops")) == 1


def test_blocks_share_one_shell_and_stop_at_the_first_failure(tmp_path: Path) -> None:
    page = console("$ mkdir sub && cd sub && export WORD=carried")
    page += console("$ echo $WORD ${PWD##*/}", "carried sub")
    assert run_page(tmp_path, page) == 2
    # A failed block stops its page: the blocks after it build on it.
    failing = console("$ false") + console("$ touch later")
    with pytest.raises(DocsError, match="exited with 1"):
        run_page(tmp_path, failing)
    assert not (tmp_path / "work" / "later").exists()


# ------------------------------------------------------------------ ... in output
@pytest.mark.parametrize(
    ("shown", "printed"),
    [
        (["a", "...", "d"], ["a", "b", "c", "d"]),  # any lines
        (["a", "...", "b"], ["a", "b"]),  # ... also stands for no line
        (["...", "c"], ["a", "b", "c"]),
        (["a", "..."], ["a"]),
        (["a", "  ...  "], ["a", "b"]),  # ... alone on a line, spaces around it
        (["Created x (... files, committed)."], ["Created x (28 files, committed)."]),
        (["...:8000..."], ["Listening at: http://127.0.0.1:8000 (42)"]),
        (["a", "b"], ["a  ", "b", "", ""]),  # trailing spaces and blank lines do not count
    ],
)
def test_dots_match_as_documented(shown: list[str], printed: list[str]) -> None:
    assert matches(shown, printed)


@pytest.mark.parametrize(
    ("shown", "printed"),
    [
        (["a", "...", "d"], ["a", "b", "c"]),  # the line after ... must still come
        (["a", "c"], ["a", "b", "c"]),  # without ..., no line may be left out
        (["a"], ["a", "b"]),  # nor added at the end
        (["Created x (... files)."], ["Created y (28 files)."]),  # ... is not any line
        (["a...b"], ["a", "b"]),  # within a line, ... spans no line break
        (["a.b"], ["axb"]),  # the rest of a line is literal, not a pattern
        ([], ["a"]),
    ],
)
def test_dots_match_nothing_else(shown: list[str], printed: list[str]) -> None:
    assert not matches(shown, printed)


# ------------------------------------------------------------------ blocks not run
def test_a_shell_block_of_another_language_fails(tmp_path: Path) -> None:
    with pytest.raises(DocsError, match=r"write shell sessions as ```console blocks, not bash"):
        run_page(tmp_path, "```bash\n$ touch made\n```\n")
    assert not (tmp_path / "work" / "made").exists()


@pytest.mark.parametrize("info", ["text", ""])
def test_commands_in_a_block_that_is_not_run_fail(tmp_path: Path, info: str) -> None:
    with pytest.raises(DocsError, match="'\\$ ' commands, which never run"):
        run_page(tmp_path, f"```{info}\n$ touch made\n```\n")
    assert not (tmp_path / "work" / "made").exists()
    # Without commands such a block is prose, and nothing runs.
    assert run_page(tmp_path, f"```{info}\nstream-scaffold new [OPTIONS] DESTINATION\n```\n") == 0


def test_a_console_block_must_start_with_a_command(tmp_path: Path) -> None:
    with pytest.raises(DocsError, match=r"starts with 'Created x\.', not a '\$ ' command"):
        run_page(tmp_path, console("Created x.", "$ touch made"))
    assert not (tmp_path / "work" / "made").exists()


def test_a_skipped_block_is_not_run(tmp_path: Path) -> None:
    skip = "<!-- docs-test: skip needs a real domain and its certificate -->"
    assert run_page(tmp_path, console("$ touch made", above=skip)) == 0
    assert not (tmp_path / "work" / "made").exists()


@pytest.mark.parametrize("reason", ["", "slow", "not runnable", "needs the network"])
def test_a_skip_needs_a_reason_of_substance(tmp_path: Path, reason: str) -> None:
    skip = f"<!-- docs-test: skip {reason} -->"
    with pytest.raises(DocsError, match="'docs-test: skip' needs a reason that says why"):
        run_page(tmp_path, console("$ touch made", above=skip))
    assert not (tmp_path / "work" / "made").exists()


@pytest.mark.parametrize(
    ("markdown", "message"),
    [
        (console("$ true", above="<!-- docs-test: skipp a typo in the kind -->"), "unknown"),
        (console("$ true", above="<!-- docs-test: terminal yes -->"), "unknown"),
        (console("$ true", above="<!-- docs-test: before -->"), "unknown"),
        ("<!-- docs-test: before true -->\n\nSome prose.\n" + console("$ true"), "right above"),
        ("<!-- docs-test: skip needs a real domain to run -->\n```text\nx\n```\n", "steer"),
        ("<!-- docs-test: before true -->\n```python\nx = 1\n```\n", "steer"),
        (console("$ true", above="<!-- docs-test: excerpt app.py -->"), "not a console"),
    ],
)
def test_a_misplaced_or_unknown_comment_fails(tmp_path: Path, markdown: str, message: str) -> None:
    page = tmp_path / "page.md"
    page.write_text(markdown, encoding="utf-8")
    with pytest.raises(DocsError, match=message):
        blocks(page)


def test_a_failing_hidden_step_fails(tmp_path: Path) -> None:
    with pytest.raises(DocsError, match="the hidden step 'false' failed"):
        run_page(tmp_path, console("$ true", above="<!-- docs-test: before false -->"))


# ------------------------------------------------------------------ excerpts
SETTINGS = "printf 'import os\\n\\nbind = 1\\nworkers = 2\\n\\nloglevel = 3\\n' > app.py"


@pytest.mark.parametrize(
    "shown",
    [
        ["bind = 1", "workers = 2"],
        ["workers = 2", "", "loglevel = 3"],
        ["import os", "...", "loglevel = 3"],
    ],
)
def test_an_excerpt_of_the_file_passes(tmp_path: Path, shown: list[str]) -> None:
    above = f"<!-- docs-test: before {SETTINGS} -->\n<!-- docs-test: excerpt app.py -->"
    assert run_page(tmp_path, f"{above}\n```python\n" + "\n".join(shown) + "\n```\n") == 0


@pytest.mark.parametrize(
    "shown",
    [
        ["bind = 1", "workers = 4"],  # a changed value
        ["bind = 1", "loglevel = 3"],  # a line left out without ...
        ["workers = 2", "bind = 1"],  # another order
        ["bind = 1", "timeout = 30"],  # a line the file lacks
    ],
)
def test_an_excerpt_the_file_does_not_have_fails(tmp_path: Path, shown: list[str]) -> None:
    above = f"<!-- docs-test: before {SETTINGS} -->\n<!-- docs-test: excerpt app.py -->"
    with pytest.raises(DocsError, match=r"the page shows lines that app\.py does not have"):
        run_page(tmp_path, f"{above}\n```python\n" + "\n".join(shown) + "\n```\n")


def test_an_excerpt_of_a_missing_file_fails(tmp_path: Path) -> None:
    with pytest.raises(DocsError, match=r"no file app\.py to show"):
        run_page(tmp_path, "<!-- docs-test: excerpt app.py -->\n```python\nx = 1\n```\n")
