"""Help pages that read like prose: option values named, never ``<bool>`` or ``{destination}``.

Typer labels every parameter with its Python type (``<str>``, ``<bool>``, ``<path>``) and wraps
required arguments in braces. The `Command` and `Group` classes here relabel the parameters
they show: a flag gets no label, a choice lists its values (``decorator|wrapper``), any other
option shows its metavar (``NAME``), and arguments are written in capitals (``DESTINATION``).
They also join the lines of each paragraph of a docstring, which Typer's rich help keeps as
they are in the source, breaking the text where the source did rather than at the terminal's
width.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

if TYPE_CHECKING:
    # Typer carries its own copy of Click; these are its classes, not the click package's.
    from typer._click import Command as ClickCommand
    from typer._click import Context, HelpFormatter, Parameter


class _Argument(TyperArgument):
    def _usage_display_name(self) -> str:
        name = self.display_name_raw.upper()
        name = name if self.required else f"[{name}]"
        return name if self.nargs == 1 else f"{name}..."

    def _rich_display_name(self) -> str:
        return self.display_name_raw.upper()

    @property
    def display_name_raw(self) -> str:
        return (self.metavar or self.name or "").upper()

    def display_type_rich(self, ctx: Context) -> str | None:
        return None


class _Option(TyperOption):
    def display_type_rich(self, ctx: Context) -> str | None:
        if self.is_flag:
            return None
        if self.metavar is not None:
            return self.metavar
        if self.type_descriptor.is_choice:
            return self.display_type(ctx).removeprefix("<").removesuffix(">")
        return (self.name or "value").upper()


def reflow(text: str | None) -> str | None:
    """``text`` with the lines of each paragraph joined (paragraphs end at a blank line)."""
    if text is None:
        return None
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


def _relabel(params: list[Parameter]) -> list[Parameter]:
    for param in params:
        if isinstance(param, TyperArgument) and not isinstance(param, _Argument):
            param.__class__ = _Argument
        elif isinstance(param, TyperOption) and not isinstance(param, _Option):
            param.__class__ = _Option
    return params


class Command(TyperCommand):
    """A command whose help and usage line name values instead of Python types."""

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The help page, its paragraphs wrapped at the terminal's width."""
        self.help = reflow(self.help)
        super().format_help(ctx, formatter)

    def get_params(self, ctx: Context) -> list[Parameter]:
        """The parameters, relabelled for the help page."""
        return _relabel(super().get_params(ctx))


class Group(TyperGroup):
    """The root command, relabelled like `Command`; every subcommand becomes a `Command`."""

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The help page, its paragraphs wrapped at the terminal's width."""
        self.help = reflow(self.help)
        super().format_help(ctx, formatter)

    def get_params(self, ctx: Context) -> list[Parameter]:
        """The parameters, relabelled for the help page."""
        return _relabel(super().get_params(ctx))

    def get_command(self, ctx: Context, cmd_name: str) -> ClickCommand | None:
        """The subcommand, relabelled like this group (whichever way it was declared)."""
        command = super().get_command(ctx, cmd_name)
        if isinstance(command, TyperCommand) and not isinstance(command, Command):
            command.__class__ = Command
        return command
