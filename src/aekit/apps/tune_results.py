"""The results of ``aekit tune`` (see :mod:`aekit.apps.tune`): the table of trials, the best
trial's line and ``best.toml``, which ``aekit train --config`` accepts."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from aekit.config import RunConfig, SECTIONS, load_config_file
from aekit.serialization import atomic_write_bytes

# options about how a run is run, not what is trained: not part of a study's identity and
# not written to best.toml
SESSION_OPTIONS = ("progress", "resume", "nproc", "report", "tensorboard", "threads", "device")
FINISHED = ("COMPLETE", "PRUNED", "FAIL")


@dataclass
class TuneResult:
    """The study's trials (all of them, earlier calls included) and the best one."""

    study_name: str
    storage: str
    search: list[str]
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    defaults: dict[str, Any] | None
    ran: int = 0
    seconds: float = 0.0
    out_dir: str = ""
    best_toml: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def table(self) -> str:
        """The trials in Markdown, best marked with ``*``."""
        columns = [c for c in ("latent_dim", "lr", "hidden", "activation", "batch_norm",
                               "residual", "dropout", "weight_decay", "batch_size")
                   if c in self.search]
        head = ["trial", "state", "val MSE", "/ PCA", "epochs", "s", *columns]
        text = ("state", "hidden", "activation", "batch_norm", "residual")
        lines = ["| " + " | ".join(head) + " |",
                 "|" + "|".join("---" if h in text else "---:" for h in head) + "|"]
        best = self.best["number"] if self.best else None
        for row in self.rows:
            opts = row.get("options", {})
            name = f"{row['number']}" + (" *" if row["number"] == best else "") + \
                (" (defaults)" if row.get("defaults") else "")
            state = row["state"].lower()
            if row.get("pruned_at"):
                state = f"pruned at {row['pruned_at']}"
            elif row.get("error"):
                state = "failed"
            cells = [name, state, num(row.get("val_mse")), ratio_text(row), int_text(row.get("epochs")),
                     secs(row.get("seconds")), *(cell(opts.get(c)) for c in columns)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"study_name": self.study_name, "storage": self.storage, "search": self.search,
                "counts": self.counts, "ran_this_call": self.ran,
                "seconds_this_call": self.seconds, "best": self.best,
                "defaults": self.defaults, "best_toml": self.best_toml, "trials": self.rows}


def num(v: Any) -> str:
    """A number for the tables (5 significant digits; "-" for none)."""
    return f"{v:.5g}" if isinstance(v, (int, float)) and math.isfinite(v) else "-"


def int_text(v: Any) -> str:
    """An integer for the tables ("-" for none)."""
    return str(int(v)) if isinstance(v, (int, float)) else "-"


def secs(v: Any) -> str:
    """Seconds for the tables ("-" for none)."""
    return f"{v:.1f}" if isinstance(v, (int, float)) else "-"


def ratio_text(row: dict[str, Any]) -> str:
    """A trial's validation error over PCA's, for the tables."""
    v, p = row.get("val_mse"), row.get("pca_val_mse")
    if isinstance(v, (int, float)) and isinstance(p, (int, float)) and p > 0:
        return f"{v / p:.3f}"
    return "-"


def cell(v: Any) -> str:
    """A parameter value for a table cell."""
    if isinstance(v, bool):
        return "yes" if v else "-"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def row_of(trial: Any) -> dict[str, Any]:
    """One trial as a plain dictionary (``tune.json``)."""
    attrs = dict(trial.user_attrs)
    row = {"number": trial.number, "state": trial.state.name, "params": dict(trial.params),
           **attrs}
    if trial.state.name == "COMPLETE":
        row["val_mse"] = trial.value
    return row


def best_line(label: str, row: dict[str, Any]) -> str:
    """``best (trial 7): val MSE ... test error ...``."""
    k = row.get("pca_components", "")
    text = (f"{label} (trial {row['number']}): val MSE {num(row.get('val_mse'))} "
            f"(PCA-{k}: {num(row.get('pca_val_mse'))}, {ratio_text(row)}x)")
    if "test_sse_per_sample" in row:
        text += (f", test error (squared error per sample) {num(row['test_sse_per_sample'])}"
                 f" (PCA-{k}: {num(row.get('pca_test_sse_per_sample'))})")
    return text + f", {int_text(row.get('epochs'))} epochs, {secs(row.get('seconds'))} s"


# -- best.toml --------------------------------------------------------------------------------
def toml_value(value: Any) -> str:
    """A TOML value for an option (strings, numbers, booleans, lists of numbers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else \
            ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def best_options(cfg: RunConfig, search: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The options ``best.toml`` holds, by section: those that differ from aekit's defaults
    and those searched (the data-chosen ones, e.g. ``hidden``, included), without the
    options about how a run is run (:data:`SESSION_OPTIONS`)."""
    default = RunConfig().to_dict()
    out: dict[str, dict[str, Any]] = {}
    for section, values in cfg.to_dict().items():
        for key, value in values.items():
            if key in SESSION_OPTIONS:
                continue
            if key in search or key == "latent_dim" or value != default[section][key]:
                out.setdefault(section, {})[key] = value
    return out


def write_best_toml(path: Path, cfg: RunConfig, search: Sequence[str],
                    comments: Sequence[str]) -> None:
    """Write ``best.toml`` (sectioned, as a run's ``config.json``) and check that it reads
    back as ``cfg``'s options."""
    lines = [f"# {c}" for c in comments]
    options = best_options(cfg, search)
    for section in SECTIONS:
        values = options.get(section)
        if not values:
            continue
        lines += ["", f"[{section}]"]
        for key, value in values.items():
            if value is None:  # TOML has no null: say it instead
                default = getattr(getattr(RunConfig(), section), key)
                lines.append(f"# {key}: off (aekit's default)" if default is None else
                             f"# {key}: off -- give --{key.replace('_', '-')} none to "
                             "aekit train (TOML has no null)")
                continue
            if section == "data" and key in ("data", "test") and Path(value).exists():
                value = str(Path(value).resolve())  # a path that works from any folder
            lines.append(f"{key} = {toml_value(value)}")
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    back = RunConfig.from_dict(load_config_file(path)).to_dict()
    for section, values in options.items():
        for key, value in values.items():
            if value is not None and key not in ("data", "test") and \
                    back[section][key] != value:
                raise RuntimeError(f"{path}: {key} reads back as {back[section][key]!r}, "
                                   f"not {value!r}")
