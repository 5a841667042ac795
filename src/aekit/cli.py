"""Command line: ``aekit VERB [options]``. Each verb lives in ``aekit.commands.<module>``
with a ``register(subparsers)`` function; ``COMMAND_MODULES`` is the one place they are listed.
Errors from bad input print one line and exit 2; a run that cannot go on exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from aekit.errors import AekitError, TrainingError

COMMAND_MODULES = ["train", "codes", "ecosystem", "doctor", "apps", "tune", "detect"]


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
        _complain(f"aekit {args.verb}: error: {exc}")
        return 1
    except AekitError as exc:
        _complain(f"aekit {args.verb}: error: {exc}")
        return 2
    except KeyboardInterrupt:
        _complain(f"aekit {args.verb}: interrupted")
        return 130


def _complain(message: str) -> None:
    """Print an error on stderr, once per job: under torchrun every rank checks the same data
    and options and meets the same error, so only rank 0 says it (the others still exit with
    the code, which torchrun reports)."""
    if os.environ.get("RANK", "0") in ("", "0"):
        print(message, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
