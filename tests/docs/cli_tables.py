"""The tables of docs/cli.md, made from the command line itself, the one source of truth.

A comment in the page names the table that follows it, invisible in the site:

``<!-- cli-commands -->``
    The commands, each linked to its section of the page or to its own page.
``<!-- cli-options -->``
    The options of ``stream-scaffold`` itself.
``<!-- cli-options: COMMAND -->``
    The arguments and options of COMMAND, grouped as its ``--help`` groups them.

Each row says what ``--help`` says: the help text, and the default, which is the help's
closing ``Default: ...`` sentence or the value Typer shows as ``[default: ...]``. Hidden
options stay out, as does ``--help``, which every command has. An option without help text
cannot be documented, and stops the rendering.

After changing an option, write the tables with ``python -m tests.docs.cli_tables``;
tests/docs/test_cli_tables.py fails while the page and the command line differ.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.text import Text
from typer.core import TyperArgument, TyperOption

from scaffold_cli._cli import app
from scaffold_cli._help import Group, reflow

if TYPE_CHECKING:
    from typer._click import Command, Context, Parameter

CLI_PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"

MARKER = re.compile(r"^<!-- cli-(?P<kind>commands|options)(?:: (?P<command>[\w-]+))? -->$")
_DEFAULT = re.compile(r"^(?P<help>.*?)\s*Default: (?P<default>.+?)\.?$", re.DOTALL)
# What Markdown would read as markup in help text (an underscore only at a word's edge), and
# the HTML it would pass through.
_MARKUP = re.compile(r"[\\`*\[|]|(?<!\w)_|_(?!\w)")
_HTML = {"&": "&amp;", "<": "&lt;"}
_ARGUMENTS_PANEL = "Arguments"
_OPTIONS_PANEL = "Options"


class UndocumentedError(ValueError):
    """A table cannot say what a parameter or command does: it has no help text."""


def command_line() -> Group:
    """The ``stream-scaffold`` command as Click sees it (a fresh copy on each call)."""
    root = typer.main.get_command(app)
    assert isinstance(root, Group)
    return root


def root_context(root: Group) -> Context:
    """A context to describe ``stream-scaffold`` itself in."""
    return root.make_context("stream-scaffold", [], resilient_parsing=True)


def subcommands(root: Group) -> Iterator[tuple[str, Command, Context]]:
    """Each command that ``--help`` lists, with a context to describe it in."""
    context = root_context(root)
    for name in root.list_commands(context):
        command = root.get_command(context, name)
        if command is not None and not command.hidden:
            yield (
                name,
                command,
                command.make_context(name, [], parent=context, resilient_parsing=True),
            )


def listed_parameters(command: Command, context: Context) -> list[Parameter]:
    """The parameters a table lists: not hidden, and not ``--help``."""
    return [
        param
        for param in command.get_params(context)
        if not getattr(param, "hidden", False) and "--help" not in param.opts
    ]


def plain(text: str) -> str:
    """``text`` as ``--help`` shows it: paragraphs joined, rich markup removed."""
    return " ".join(Text.from_markup(reflow(text) or "").plain.split())


def help_and_default(param: Parameter, context: Context) -> tuple[str, str]:
    """What ``param`` does and its default ("" when none), as ``--help`` says them."""
    help_text = plain(getattr(param, "help", None) or "")
    default = ""
    said = _DEFAULT.match(help_text)
    if said:
        help_text, default = said["help"], said["default"]
    shown = shown_default(param, context)
    if shown and default:
        raise UndocumentedError(f"{param.opts[0]}: its help says a default and Typer shows one")
    if not help_text:
        raise UndocumentedError(
            f"{context.command_path} {param.opts[0]} has no help text: say what it does"
        )
    if isinstance(param, TyperArgument) and param.required:
        default = "required"
    return help_text, shown or default


def shown_default(param: Parameter, context: Context) -> str:
    """The ``[default: ...]`` that ``--help`` shows for ``param``, decided as Typer decides
    it (typer.rich_utils); "" when it shows none."""
    if not isinstance(param, TyperOption | TyperArgument):
        return ""
    value = param._extract_default_help_str(ctx=context)
    as_text = isinstance(param.show_default, str)
    if not as_text and (value is None or not (param.show_default or context.show_default)):
        return ""
    return param._get_default_string(ctx=context, show_default_is_str=as_text, default_value=value)


def parameter_cell(param: Parameter, context: Context) -> str:
    """How the parameter is written: ``DESTINATION``, ``--name NAME``, ``--defaults``, ``-y``,
    ``--session / --no-session``, with the value's name or choices as ``--help`` shows them."""
    if isinstance(param, TyperArgument):
        name = (param.metavar or param.name or "").upper()
        return f"`{name}{'...' if param.nargs != 1 else ''}`"
    long, *short = sorted(param.opts, key=lambda opt: not opt.startswith("--"))
    value = param.display_type_rich(context) if isinstance(param, TyperOption) else None
    first = f"{long} {value}" if value else long
    if param.secondary_opts:
        first = " / ".join([long, *param.secondary_opts])
    return ", ".join(f"`{opt}`" for opt in [first, *short])


def text_cell(text: str) -> str:
    """``text`` for a table cell, shown as written: Markdown's markup characters escaped
    (a pipe inside a code span needs none in MkDocs' tables)."""
    escaped = _MARKUP.sub(lambda match: "\\" + match[0], text)
    return re.sub("[&<]", lambda match: _HTML[match[0]], escaped)


def default_cell(default: str, param: Parameter) -> str:
    """A default that is one of the option's values as code, any other as text."""
    choices = getattr(getattr(param, "type_descriptor", None), "choices", None) or ()
    return f"`{default}`" if default in map(str, choices) else text_cell(default)


def _row(*cells: str) -> str:
    return "|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|"


def options_table(command: Command, context: Context) -> list[str]:
    """The table of ``command``'s arguments and options, in the groups of its ``--help``."""
    panels: dict[str, list[str]] = {_ARGUMENTS_PANEL: [], _OPTIONS_PANEL: []}
    for param in listed_parameters(command, context):
        is_argument = isinstance(param, TyperArgument)
        panel = getattr(param, "rich_help_panel", None) or (
            _ARGUMENTS_PANEL if is_argument else _OPTIONS_PANEL
        )
        help_text, default = help_and_default(param, context)
        panels.setdefault(panel, []).append(
            _row(parameter_cell(param, context), default_cell(default, param), text_cell(help_text))
        )
    filled = {panel: rows for panel, rows in panels.items() if rows}
    table = ["| name | default | |", "| --- | --- | --- |"]
    for panel, rows in filled.items():
        if len(filled) > 1:
            table.append(_row(f"**{panel}**", "", ""))
        table.extend(rows)
    return table


def commands_table(root: Group, page: str) -> list[str]:
    """The commands, each linked to the page's section of that name, else to its own page."""
    table = ["| command | |", "| --- | --- |"]
    for name, command, _ in subcommands(root):
        if re.search(rf"^## {re.escape(name)}$", page, re.MULTILINE):
            target = f"#{name}"
        elif (CLI_PAGE.parent / f"{name}.md").is_file():
            target = f"{name}.md"
        else:
            raise UndocumentedError(f"command {name} has no section in cli.md and no page")
        summary = plain((command.help or "").split("\n\n")[0])
        if not summary:
            raise UndocumentedError(f"command {name} has no help text: say what it does")
        table.append(_row(f"[`{name}`]({target})", text_cell(summary)))
    return table


def render(page: str, root: Group | None = None) -> str:
    """``page`` with the table under each marker made anew from ``root`` (by default the
    command line); the rest of the page is left as it is."""
    root = root or command_line()
    commands = {name: (command, context) for name, command, context in subcommands(root)}
    lines = page.splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        out.append(line)
        index += 1
        marker = MARKER.match(line)
        if not marker:
            continue
        while index < len(lines) and lines[index].startswith("|"):
            index += 1  # the table as it was
        name = marker["command"]
        if marker["kind"] == "commands":
            out.extend(commands_table(root, page))
        elif name is None:
            out.extend(options_table(root, root_context(root)))
        elif name in commands:
            out.extend(options_table(*commands[name]))
        else:
            raise UndocumentedError(f"cli.md has a table of {name!r}, which is no command")
    return "\n".join(out) + "\n"


def main() -> None:
    """Write the tables of docs/cli.md."""
    text = CLI_PAGE.read_text(encoding="utf-8")
    rendered = render(text)
    if rendered == text:
        print(f"{CLI_PAGE.name} is up to date")
        return
    CLI_PAGE.write_text(rendered, encoding="utf-8")
    print(f"wrote the tables of {CLI_PAGE.name}; read the diff")


if __name__ == "__main__":
    main()
