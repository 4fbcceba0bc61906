"""Sphinx directive ``.. cli-reference:: MODULE:FUNCTION``: a command's arguments, read at build time from the
argparse parser that FUNCTION builds (subcommands, argument groups, choices, defaults and help), so the
reference cannot drift from the code."""
from __future__ import annotations

import argparse
import importlib
import inspect
from typing import List

from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from options_reference import nested_parse_source
from rst_text import escape, indent, title

UNDERLINES = "-~^"


def load_parser(target: str) -> argparse.ArgumentParser:
    """The parser ``MODULE:FUNCTION`` builds (FUNCTION is given the package version if it takes an argument)."""
    module_name, _, function_name = target.partition(":")
    builder = getattr(importlib.import_module(module_name), function_name)
    if inspect.signature(builder).parameters:
        from openmm_reparam import __version__
        return builder(__version__)
    return builder()


def help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The action's help with ``%(default)s`` and the like filled in, as ``--help`` shows it."""
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    return parser._get_formatter()._expand_help(action)  # noqa: SLF001  (argparse's own expansion)


def action_lines(parser: argparse.ArgumentParser, action: argparse.Action) -> List[str]:
    """One argument: its spelling (with metavar), then its help, choices and default."""
    formatter = parser._get_formatter()  # noqa: SLF001
    spelling = formatter._format_action_invocation(action)  # noqa: SLF001
    details = [escape(help_text(parser, action))] if help_text(parser, action) else []
    if action.choices and not isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
        details.append("Choices: " + ", ".join(f"``{choice}``" for choice in action.choices) + ".")
    if action.required and action.option_strings:
        details.append("Required.")
    return [f"``{spelling}``"] + indent([" ".join(details) or "(no help text)"]) + [""]


WIDTH = 100  # usage lines wrap here, whatever terminal the documentation is built in


def fixed_width(prog: str) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(prog, width=WIDTH)


def parser_lines(parser: argparse.ArgumentParser, depth: int = 0) -> List[str]:
    """A parser: usage, description, its argument groups, then each subcommand one level down."""
    parser.formatter_class = fixed_width
    lines = ["::", ""] + indent(parser.format_usage().strip().splitlines()) + [""]
    if parser.description:
        lines += [escape(parser.description), ""]
    subcommands = []
    for group in parser._action_groups:  # noqa: SLF001
        actions = [a for a in group._group_actions if not isinstance(a, (argparse._HelpAction,  # noqa: SLF001
                                                                         argparse._SubParsersAction))]
        subcommands += [a for a in group._group_actions if isinstance(a, argparse._SubParsersAction)]  # noqa
        if not actions:
            continue
        lines += [f".. rubric:: {escape(group.title or 'arguments')}", ""]
        for action in actions:
            lines += action_lines(parser, action)
    for action in subcommands:
        for name, subparser in action.choices.items():
            lines += title(f"``{subparser.prog}``", UNDERLINES[min(depth, len(UNDERLINES) - 1)])
            lines += parser_lines(subparser, depth + 1)
    return lines


class CliReferenceDirective(SphinxDirective):
    """``.. cli-reference:: MODULE:FUNCTION`` renders the parser FUNCTION builds."""

    required_arguments = 1
    has_content = False

    def run(self):
        target = self.arguments[0]
        module = importlib.import_module(target.partition(":")[0])
        self.env.note_dependency(inspect.getsourcefile(module))
        return nested_parse_source(self, parser_lines(load_parser(target))).children


def setup(app: Sphinx) -> dict:
    app.add_directive("cli-reference", CliReferenceDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
