"""Shared pieces of the command-line verbs: config flags generated from the dataclasses,
``--json`` output, and atomic ``.npy`` output.

Imported while the parser is built, so it imports nothing heavy (the run functions do)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import sys
import types
import typing
from typing import Any, Callable, Iterator

from aekit import config as _config
from aekit.config import SECTIONS, RunConfig, load_config_file
from aekit.errors import ConfigError

# The values a choice option takes, for tab completion (the config checks them).
CHOICES = {"activation": _config.ACTIVATIONS, "output_activation": _config.OUTPUT_ACTIVATIONS,
           "init": _config.INITS, "loss": _config.LOSSES, "kind": _config.MODEL_KINDS,
           "optimizer": _config.OPTIMIZERS, "schedule": _config.SCHEDULES,
           "scaling": _config.SCALINGS, "device": _config.DEVICES,
           "precision": _config.PRECISIONS,
           "balance": _config.BALANCES}
# Flags whose names differ from the field name, and short help-group titles.
_GROUP_TITLES = {"data": "data", "model": "model", "optim": "optimizer and penalties",
                 "schedule": "learning-rate schedule", "train": "training loop"}


def _none_or(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.strip().lower() in ("none", "off", "") else kind(text)
    parse.__name__ = kind.__name__
    return parse


def _float_or_auto(text: str) -> float | str:
    return "auto" if text.strip().lower() == "auto" else float(text)


_float_or_auto.__name__ = "number or 'auto'"  # argparse: "invalid number or 'auto' value"


def _int_or_auto(text: str) -> int | str:
    return "auto" if text.strip().lower() == "auto" else int(text)


_int_or_auto.__name__ = "integer or 'auto'"


def _field_type(f: dataclasses.Field) -> tuple[Callable[[str], Any] | None, bool]:
    """argparse ``type`` for a config field and whether it is a boolean switch."""
    if f.name == "lr":  # --lr auto: the learning-rate range test picks it
        return _float_or_auto, False
    hint = typing.get_type_hints(SECTIONS_BY_FIELD[f.name])[f.name]
    optional = type(None) in typing.get_args(hint)
    if {int, str} <= set(typing.get_args(hint)):  # a count or "auto" (early_stopping_patience)
        return _none_or(_int_or_auto), False
    if {float, str} <= set(typing.get_args(hint)):  # a share or "auto" (validation_split)
        return _float_or_auto, False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    base = tuple if typing.get_origin(hint) is tuple else hint
    if base is bool:
        return None, True
    if base is tuple:
        kind: Callable[[str], Any] = str  # "1000,500,250", parsed by the config
    elif base is int:
        kind = int
    elif base is float:
        kind = float
    else:
        kind = str
    return (_none_or(kind) if optional else kind), False


SECTIONS_BY_FIELD = {f.name: klass for klass in SECTIONS.values()
                     for f in dataclasses.fields(klass)}


def add_config_options(parser: argparse.ArgumentParser,
                       help_overrides: dict[str, str] | None = None) -> None:
    """One ``--flag`` per configuration field, default shown, value SUPPRESSed when not given
    (so that a ``--config`` file's values are only overridden by flags actually typed).
    ``help_overrides``: field name -> the whole help text, for a verb where the flag means
    something else (``aekit detect --no-report``)."""
    for section, klass in SECTIONS.items():
        group = parser.add_argument_group(_GROUP_TITLES[section])
        for f in dataclasses.fields(klass):
            flag = "--" + f.name.replace("_", "-")
            default = f.default if f.default is not dataclasses.MISSING else None
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            if f.metadata.get("auto"):
                shown = "from the data"
            help_text = f"{f.metadata.get('help', '')} (default: {shown})"
            help_text = (help_overrides or {}).get(f.name, help_text)
            kind, is_bool = _field_type(f)
            if is_bool:
                group.add_argument(flag, action=argparse.BooleanOptionalAction,
                                   default=argparse.SUPPRESS, help=help_text)
            else:
                action = group.add_argument(flag, type=kind, default=argparse.SUPPRESS,
                                            help=help_text, metavar=f.name.upper())
                if f.name in CHOICES:  # read by argcomplete (aekit[completion]) only
                    action.completer = _completer(CHOICES[f.name])  # type: ignore[attr-defined]


def _completer(values: tuple[str, ...]) -> Callable[..., tuple[str, ...]]:
    def complete(**_: Any) -> tuple[str, ...]:
        return values
    return complete


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Defaults, then the ``--config`` file, then the flags typed on the command line."""
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values.update(load_config_file(args.config))
    for name in SECTIONS_BY_FIELD:
        if hasattr(args, name):
            values[name] = getattr(args, name)
    return RunConfig.from_dict(values)


def add_device_option(parser: argparse.ArgumentParser, default: str = "cpu",
                      what: str = "the model runs") -> None:
    """``--device``: where a verb's model runs (cpu, cuda, or auto: CUDA when PyTorch sees
    it)."""
    parser.add_argument("--device", default=default, choices=_config.DEVICES,
                        help=f"where {what}: cpu, cuda, or auto (CUDA when PyTorch sees it) "
                        f"(default: {default})")


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--json``: stdout holds one JSON document, ``what``; every other line goes to
    stderr."""
    parser.add_argument("--json", action="store_true",
                        help=f"print {what} as one JSON document on stdout; progress and "
                        "the human-readable lines go to stderr")


@contextlib.contextmanager
def human_output_to_stderr(active: bool) -> Iterator[None]:
    """With ``--json``: whatever the block writes to stdout goes to stderr, so that stdout
    holds only the JSON document printed after it. Python's ``print`` and, where stdout is a
    real file descriptor, child processes (torchrun's workers) and native code alike."""
    if not active:
        yield
        return
    sys.stdout.flush()
    saved_fd = None
    try:
        if sys.stdout.fileno() == 1:
            sys.stderr.flush()
            saved_fd = os.dup(1)
            os.dup2(2, 1)
    except (AttributeError, OSError, ValueError):  # not a file (captured, in-process use)
        saved_fd = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        if saved_fd is not None:
            os.dup2(saved_fd, 1)
            os.close(saved_fd)


def print_json(document: Any) -> None:
    """The one JSON document of ``--json`` on stdout (NaN and infinity as in the run folder's
    JSON files)."""
    print(json.dumps(document, indent=2), flush=True)


def _warn_deprecated(option_string: str | None, deprecated: dict[str, str]) -> None:
    if option_string in deprecated:
        print(f"aekit: warning: {option_string} is deprecated, use "
              f"{deprecated[option_string]} (same meaning)", file=sys.stderr, flush=True)


class _DeprecatedSpellings:
    """Takes ``deprecated`` (old spelling -> new spelling) and warns when an old one is used;
    mixed into an argparse action before it."""

    def __init__(self, option_strings: list[str], dest: str,
                 deprecated: dict[str, str] | None = None, **kwargs: Any) -> None:
        self.deprecated = deprecated or {}
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        _warn_deprecated(option_string, self.deprecated)
        super().__call__(parser, namespace, values, option_string)


class StoreWithAlias(_DeprecatedSpellings, argparse._StoreAction):
    """``store`` for a flag with a deprecated second spelling (``--n-train`` for
    ``--max-train-samples``): both work, the old one prints a warning naming the new one."""


class BooleanWithAlias(_DeprecatedSpellings, argparse.BooleanOptionalAction):
    """A ``--flag/--no-flag`` switch with deprecated spellings (``--scaling/--no-scaling``
    for export's ``--include-scaling/--no-include-scaling``), which print a warning."""


def save_npy(path: str, array: Any) -> None:
    """Write ``array`` to ``path`` (.npy, no pickle) atomically."""
    import numpy as np

    from aekit.serialization import atomic_write_bytes

    if not str(path).endswith(".npy"):
        raise ConfigError(f"`--out` must be a .npy file. Received: --out {path}")
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())
