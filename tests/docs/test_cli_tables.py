"""docs/cli.md lists every command and option as ``--help`` does (see `tests.docs.cli_tables`),
and ``check`` and ``probe``, documented on pages of their own, name every option there."""

from __future__ import annotations

import copy
from html.parser import HTMLParser
from typing import TYPE_CHECKING

import markdown
import pytest
import yaml

from tests.conftest import ROOT

from .cli_tables import (
    CLI_PAGE,
    UndocumentedError,
    command_line,
    help_and_default,
    listed_parameters,
    options_table,
    render,
    root_context,
    subcommands,
    text_cell,
)

if TYPE_CHECKING:
    from typer._click import Command, Context

    from scaffold_cli._help import Group

REGENERATE = "python -m tests.docs.cli_tables"


def test_the_tables_of_cli_md_are_the_command_lines() -> None:
    text = CLI_PAGE.read_text(encoding="utf-8")
    assert render(text) == text, f"docs/cli.md's tables are stale: run {REGENERATE}"


def test_every_command_of_cli_md_has_its_table() -> None:
    text = CLI_PAGE.read_text(encoding="utf-8")
    for name, _, _ in subcommands(command_line()):
        if f"## {name}\n" in text:
            assert f"<!-- cli-options: {name} -->" in text, name


def _option(command: str, option: str) -> object:
    """A copy of ``command``'s parameter ``option``, to add to another command."""
    root = command_line()
    return copy.copy(next(param for param in root.commands[command].params if option in param.opts))


def test_an_option_added_changes_the_table() -> None:
    """The negative control: the page is stale once the command line has one more option."""
    text = CLI_PAGE.read_text(encoding="utf-8")
    root = command_line()
    root.commands["new"].params.append(_option("probe", "--insecure"))
    rendered = render(text, root)
    assert rendered != text
    new_table = rendered.split("<!-- cli-options: new -->")[1].split("\n\n")[0]
    assert "| `--insecure`, `-k` | |" in new_table


def test_an_option_without_help_is_refused() -> None:
    root = command_line()
    silent = _option("probe", "--insecure")
    silent.help = None  # type: ignore[attr-defined]
    root.commands["update"].params.append(silent)
    with pytest.raises(UndocumentedError, match="stream-scaffold update --insecure has no help"):
        render(CLI_PAGE.read_text(encoding="utf-8"), root)


def test_a_command_without_a_section_or_page_is_refused() -> None:
    root = command_line()
    root.add_command(copy.copy(root.commands["list"]), "catalogue")
    with pytest.raises(UndocumentedError, match="command catalogue has no section"):
        render(CLI_PAGE.read_text(encoding="utf-8"), root)


class _Cells(HTMLParser):
    """The text of each cell of each table row, as a browser shows it."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in {"td", "th"}:
            self.rows[-1].append("")
            self._in_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag in {"td", "th"}:
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.rows[-1][-1] += data


def _site_extensions() -> list[str]:
    """The Markdown extensions of mkdocs.yml, by name."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    return [
        next(iter(item)) if isinstance(item, dict) else item
        for item in config["markdown_extensions"]
    ]


@pytest.mark.parametrize("name", ["", *(name for name, _, _ in subcommands(command_line()))])
def test_the_site_shows_each_help_text_as_written(name: str) -> None:
    """Markdown turns no character of a help text into markup: each cell reads as --help."""
    command, context = _command(name)
    table = "\n".join(options_table(command, context))
    html = markdown.markdown(table, extensions=_site_extensions())
    parser = _Cells()
    parser.feed(html)
    shown = [row for row in parser.rows[1:] if row[1:] != ["", ""]]  # no group headings
    expected = [help_and_default(param, context) for param in listed_parameters(command, context)]
    assert [(row[2], row[1]) for row in shown] == expected
    for row, param in zip(shown, listed_parameters(command, context), strict=True):
        assert all(
            opt in row[0] for opt in [*param.opts, *param.secondary_opts] if opt.startswith("-")
        )


def _shown_in_a_cell(cell: str) -> str:
    parser = _Cells()
    parser.feed(markdown.markdown(f"| a |\n| --- |\n| {cell} |\n", extensions=_site_extensions()))
    return parser.rows[1][0]


def test_markup_characters_of_a_help_text_are_shown_as_written() -> None:
    tricky = "runs as '_', '_' dropped, a|b, *not bold*, [no link](x), `no code`, <b>, &lt;, C:\\"
    assert _shown_in_a_cell(text_cell(tricky)) == tricky
    # The negative control: unescaped, Markdown would have made markup of it.
    assert _shown_in_a_cell(tricky) != tricky


@pytest.mark.parametrize("page", ["check", "probe"])
def test_commands_with_a_page_of_their_own_name_every_option_there(page: str) -> None:
    text = (ROOT / "docs" / f"{page}.md").read_text(encoding="utf-8")
    assert not _unnamed(page, text)
    # The negative control: an option the page does not name is found.
    root = command_line()
    extra = _option("new", "--no-git")
    root.commands[page].params.append(extra)
    assert _unnamed(page, text, root) == ["--no-git"]


def _command(name: str, root: Group | None = None) -> tuple[Command, Context]:
    """The command ``name`` of ``root`` (by default the command line; "": itself), with its
    context."""
    if not name:
        root = root or command_line()
        return root, root_context(root)
    return next(
        (command, context)
        for found, command, context in subcommands(root or command_line())
        if found == name
    )


def _unnamed(page: str, text: str, root: Group | None = None) -> list[str]:
    """The options of command ``page`` that its page does not name."""
    command, context = _command(page, root)
    return [
        opt
        for param in listed_parameters(command, context)
        for opt in param.opts
        if opt.startswith("--") and f"`{opt}" not in text
    ]
