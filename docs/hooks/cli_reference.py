"""MkDocs hook: the command-line reference, generated from aekit's argument parsers.

``aekit.cli.build_parser()`` builds the same parser that ``aekit --help`` prints; this hook
walks its sub-commands and writes ``reference/cli.md`` (one section per verb: what it does, its
usage line and a table of its options, group by group, with the defaults ``--help`` shows). The
page exists only in the build, so it cannot drift from the code.
"""

from __future__ import annotations

import argparse
import re

PAGE = "reference/cli.md"


def cli_markdown() -> str:
    """The reference page for every verb of ``aekit`` (Markdown)."""
    from aekit.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    summaries = {a.dest: a.help or "" for a in sub._choices_actions}
    out = ["# Command-line reference", "",
           "Generated from aekit's argument parsers when the site is built: it is exactly what "
           "`aekit VERB --help` prints, laid out as tables. `python -m aekit` is the same "
           "command as `aekit`. For what each verb is for, see the "
           "[command-line overview](../guide/command-line.md).", "",
           "| verb | what it does |", "|---|---|"]
    for verb, summary in summaries.items():
        out.append(f"| [`aekit {verb}`](#aekit-{verb}) | {_cell(summary)} |")
    out.append("")
    for verb, verb_parser in sub.choices.items():
        out += _verb_section(verb, verb_parser, summaries.get(verb, ""))
    return "\n".join(out) + "\n"


def _verb_section(verb: str, parser: argparse.ArgumentParser, summary: str) -> list[str]:
    formatter = parser._get_formatter()
    out = [f"## aekit {verb} {{#aekit-{verb}}}", ""]
    text = parser.description or summary
    if text:
        out += [_sentence(text), ""]
    out += ["```text", parser.format_usage().strip(), "```", ""]
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help is not argparse.SUPPRESS]
        if not actions:
            continue
        title = group.title or "options"
        out += [f"**{title}**", ""] if title not in ("options", "optional arguments") else []
        out += ["| option | description |", "|---|---|"]
        for action in actions:
            names = ", ".join(action.option_strings) or action.dest
            if action.option_strings and action.nargs != 0:
                metavar = formatter._format_args(action, formatter._get_default_metavar_for_optional(action))
                names = f"{names} {metavar}"
            help_text = formatter._expand_help(action) if action.help else ""
            out.append(f"| `{names}` | {_cell(help_text)} |")
        out.append("")
    if parser.epilog:
        out += ["```text", parser.epilog.strip(), "```", ""]
    return out


def _sentence(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    """One table cell: whitespace folded, pipes escaped, and outside `code spans` the
    Markdown-active characters kept as text (option help mentions *.wav, <step>, [0, 1])."""
    parts = re.split(r"(`[^`]*`)", _sentence(text))
    return "".join(part.replace("|", "\\|") if part.startswith("`") else _escape(part)
                   for part in parts)


def _escape(text: str) -> str:
    for char in "\\*_[]|":
        text = text.replace(char, "\\" + char)
    return text.replace("<", "&lt;").replace(">", "&gt;")


def on_files(files, config):
    from mkdocs.structure.files import File  # here, so that the tests import this without mkdocs

    files.append(File.generated(config, PAGE, content=cli_markdown()))
    return files
