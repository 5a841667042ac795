"""The search space of ``aekit tune`` (see :mod:`aekit.apps.tune`): which options are searched,
their ranges, aekit's defaults as trial 0, and the hidden widths as a funnel."""

from __future__ import annotations

from typing import Any, Sequence

from aekit.errors import ConfigError
from aekit.pipeline import PreparedRun

SEARCHABLE = ("lr", "hidden", "activation", "batch_norm", "residual", "dropout",
              "weight_decay", "batch_size", "latent_dim")
DEFAULT_SEARCH = SEARCHABLE[:-1]  # the latent size only when asked
LR_RANGE = (1e-4, 3e-2)
WIDTH_RANGE = (16, 1024)
MAX_DEPTH = 3
ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "tanh")
MAX_DROPOUT, DROPOUT_STEP = 0.3, 0.05
WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)
BATCH_SIZES = (16, 32, 64, 128, 256)
MAX_TUNED_LATENT = 64


def funnel(width: int, depth: int, latent: int) -> tuple[int, ...]:
    """``depth`` encoder widths starting at ``width``, each half the previous one, never
    narrower than the code: ``funnel(512, 3, 30) == (512, 256, 128)``."""
    return tuple(max(int(latent), int(width) >> i) for i in range(int(depth)))


def batch_choices(n_train: int) -> list[int]:
    """The batch sizes worth trying on ``n_train`` rows (no batch larger than the data)."""
    return [b for b in BATCH_SIZES if b <= n_train] or [BATCH_SIZES[0]]


def latent_range(n_features: int) -> tuple[int, int]:
    """Smallest and largest latent size tried by ``--tune-latent``."""
    return min(2, n_features - 1), max(1, min(MAX_TUNED_LATENT, n_features - 1))


def suggest(trial: Any, search: Sequence[str], run: PreparedRun) -> dict[str, Any]:
    """The options of one trial, asked of ``trial`` (an Optuna trial, or ``FixedTrial``);
    returns changes for :func:`aekit.pipeline.with_config`."""
    changes: dict[str, Any] = {}
    latent = run.config.model.latent_dim
    if "latent_dim" in search:
        latent = changes["latent_dim"] = trial.suggest_int(
            "latent_dim", *latent_range(run.n_features), log=True)
    if "lr" in search:
        changes["lr"] = trial.suggest_float("lr", *LR_RANGE, log=True)
    if "hidden" in search:
        depth = trial.suggest_int("depth", 1, MAX_DEPTH)
        width = trial.suggest_int("width", *WIDTH_RANGE, log=True)
        changes["hidden"] = funnel(width, depth, latent)
    if "activation" in search:
        changes["activation"] = trial.suggest_categorical("activation", list(ACTIVATIONS))
    for switch in ("batch_norm", "residual"):
        if switch in search:
            changes[switch] = trial.suggest_categorical(switch, [False, True])
    if "dropout" in search:
        rate = round(trial.suggest_float("dropout", 0.0, MAX_DROPOUT, step=DROPOUT_STEP), 2)
        changes["dropout"] = rate or None
    if "weight_decay" in search:
        changes["weight_decay"] = trial.suggest_categorical("weight_decay",
                                                            list(WEIGHT_DECAYS)) or None
    if "batch_size" in search:
        changes["batch_size"] = trial.suggest_categorical(
            "batch_size", batch_choices(len(run.train_index)))
    return changes


def default_params(run: PreparedRun, search: Sequence[str]) -> dict[str, Any]:
    """aekit's defaults for this data as the search space's parameters (trial 0); a default
    the space cannot express is left to the sampler."""
    cfg = run.config
    params: dict[str, Any] = {}
    latent = cfg.model.latent_dim
    low, high = latent_range(run.n_features)
    if "latent_dim" in search and latent is not None and low <= latent <= high:
        params["latent_dim"] = latent
    if "lr" in search and not cfg.train.lr_auto and LR_RANGE[0] <= cfg.optim.lr <= LR_RANGE[1]:
        params["lr"] = cfg.optim.lr
    hidden = cfg.model.hidden or ()
    if "hidden" in search and 1 <= len(hidden) <= MAX_DEPTH and \
            WIDTH_RANGE[0] <= hidden[0] <= WIDTH_RANGE[1] and \
            funnel(hidden[0], len(hidden), latent or 1) == tuple(hidden):
        params.update(depth=len(hidden), width=hidden[0])
    if "activation" in search and cfg.model.activation in ACTIVATIONS:
        params["activation"] = cfg.model.activation
    for switch in ("batch_norm", "residual"):
        if switch in search:
            params[switch] = getattr(cfg.model, switch)
    rate = cfg.model.dropout or 0.0
    if "dropout" in search and rate <= MAX_DROPOUT and \
            abs(rate / DROPOUT_STEP - round(rate / DROPOUT_STEP)) < 1e-9:
        params["dropout"] = rate
    if "weight_decay" in search and (cfg.optim.weight_decay or 0.0) in WEIGHT_DECAYS:
        params["weight_decay"] = cfg.optim.weight_decay or 0.0
    if "batch_size" in search and cfg.train.batch_size in batch_choices(len(run.train_index)):
        params["batch_size"] = cfg.train.batch_size
    return params


def parse_search(text: str | Sequence[str] | None, tune_latent: bool = False) -> list[str]:
    """``"lr,hidden"`` (or a list; None: :data:`DEFAULT_SEARCH`) -> the options to search.

    Raises:
        ConfigError: an option that cannot be searched.
    """
    if text is None:
        names = list(DEFAULT_SEARCH)
    else:
        names = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
        names = [n for n in names if n]
    unknown = [n for n in names if n not in SEARCHABLE]
    if unknown or not (names or tune_latent):
        raise ConfigError(f"`search` must name options among {', '.join(SEARCHABLE)}. "
                          f"Received: search={text!r}")
    if tune_latent and "latent_dim" not in names:
        names.append("latent_dim")
    return [n for n in SEARCHABLE if n in names]
