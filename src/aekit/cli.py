# PYTHON_ARGCOMPLETE_OK
"""Command line: ``aekit VERB [options]``. Each verb lives in ``aekit.commands.<module>``
with a ``register(subparsers)`` function; ``COMMAND_MODULES`` is the one place they are listed.
Errors from bad input print one line and exit 2; a run that cannot go on exits 1.

Building the parser imports nothing heavy (no PyTorch, scikit-learn, SciPy, matplotlib...):
each verb imports what it needs inside its run function, so that ``aekit --help``,
``aekit VERB --help``, ``aekit --version``, tab completion and mistyped options answer at once.
``tests/test_cli_speed.py`` holds that line.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys

from aekit.errors import AekitError, TrainingError

COMMAND_MODULES = ["train", "codes", "ecosystem", "doctor", "apps", "tune", "detect", "explain"]


class AekitArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors stay readable: a verb with dozens of options shows a
    short usage line (its positionals and required options) instead of all of them, then the
    error, then where the full list is."""

    MAX_USAGE_LINES = 3

    def error(self, message: str) -> None:  # type: ignore[override]
        usage = self.format_usage()
        if usage.count("\n") > self.MAX_USAGE_LINES:
            usage = self.short_usage()
        self.exit(2, f"{usage}{self.prog}: error: {message}\n"
                  f"(all options: {self.prog} --help)\n")

    def short_usage(self) -> str:
        """``usage: PROG`` with the positionals and required options only, then [OPTIONS]."""
        needed = [a for a in self._actions if a.required or not a.option_strings]
        formatter = self._get_formatter()
        formatter.add_usage(None, needed, [])
        return formatter.format_help().rstrip("\n") + " [OPTIONS]\n"


def build_parser() -> argparse.ArgumentParser:
    """The ``aekit`` parser with every verb registered (cheap: no heavy import)."""
    from aekit import __version__

    parser = AekitArgumentParser(
        prog="aekit", description="Train autoencoders by gradient descent, compare them with "
        "PCA, and put them to work.")
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"aekit.commands.{name}").register(sub)
    parser.verb_parsers = sub.choices  # type: ignore[attr-defined]
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aekit`` command; returns the exit code."""
    parser = build_parser()
    _autocomplete(parser)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _refuse_unknown(parser.verb_parsers.get(args.verb, parser), unknown)  # type: ignore
    try:
        return int(args.func(args) or 0)
    except TrainingError as exc:
        _complain(f"aekit {args.verb}: error: {exc}")
        return 1
    except AekitError as exc:
        _complain(f"aekit {args.verb}: error: {exc}")
        return 2
    except KeyboardInterrupt:
        _complain(f"aekit {args.verb}: interrupted")
        return 130


def _autocomplete(parser: argparse.ArgumentParser) -> None:
    """Tab completion with ``pip install 'aekit[completion]'`` (argcomplete): when the shell
    asks for completions (``_ARGCOMPLETE`` set) argcomplete answers and exits; otherwise
    nothing is imported, so ``--help`` stays fast."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def _refuse_unknown(parser: argparse.ArgumentParser, unknown: list[str]) -> None:
    """Options the verb does not have: say which, suggest the closest ones it has, exit 2."""
    known = [s for action in parser._actions for s in action.option_strings]
    hints = []
    for word in unknown:
        if word.startswith("-"):
            close = difflib.get_close_matches(word.split("=", 1)[0], known, n=2, cutoff=0.7)
            if close:
                hints.append(f"{word.split('=', 1)[0]}: did you mean {' or '.join(close)}?")
    message = f"unrecognized arguments: {' '.join(unknown)}"
    if hints:
        message += f" ({'; '.join(hints)})"
    parser.error(message)


def _complain(message: str) -> None:
    """Print an error on stderr, once per job: under torchrun every rank checks the same data
    and options and meets the same error, so only rank 0 says it (the others still exit with
    the code, which torchrun reports)."""
    if os.environ.get("RANK", "0") in ("", "0"):
        print(message, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
