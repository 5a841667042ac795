"""Command line: ``aekit VERB [options]``. Each verb lives in ``aekit.commands.<module>``
with a ``register(subparsers)`` function; ``COMMAND_MODULES`` is the one place they are listed.
Errors from bad input print one line and exit 2; a run that cannot go on exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from aekit.errors import AekitError, TrainingError

COMMAND_MODULES = ["train", "codes", "ecosystem", "doctor", "apps"]


def build_parser() -> argparse.ArgumentParser:
    """The ``aekit`` parser with every verb registered."""
    from aekit import __version__

    parser = argparse.ArgumentParser(
        prog="aekit", description="Train autoencoders by gradient descent, compare them with "
        "PCA, and put them to work.")
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"aekit.commands.{name}").register(sub)
    return parser

def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aekit`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TrainingError as exc:
        print(f"aekit {args.verb}: error: {exc}", file=sys.stderr)
        return 1
    except AekitError as exc:
        print(f"aekit {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"aekit {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
