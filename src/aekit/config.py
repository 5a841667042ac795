"""Run configuration: one frozen dataclass per concern, validated on creation, JSON round-trip.

Every field is an option of ``aekit train`` (flag ``--field-name``) and a key of a ``--config``
file. Field names are unique across the dataclasses, so a config file may be flat
(``{"latent_dim": 30}``) or sectioned (``{"model": {"latent_dim": 30}}``) like ``config.json``.
"Off" is ``None``, not ``0``. This module does not import torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from aekit.errors import ConfigError

ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid")
OUTPUT_ACTIVATIONS = ("auto", "sigmoid", "identity", "clip")
INITS = ("auto", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal",
         "orthogonal", "torch")
LOSSES = ("mse", "bce")
MODEL_KINDS = ("mlp", "vae", "conv")
OPTIMIZERS = ("gd", "sgd", "momentum", "nesterov", "adam", "adamw")
SCHEDULES = ("constant", "step", "exponential", "linear", "cosine", "cosine_restarts",
             "one_cycle", "plateau")
SCALINGS = ("auto", "unit", "standard", "minmax", "none")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "tf32", "bf16")  # aekit.training.device applies them
BALANCES = ("none", "weights", "sampler")
NOISE_KINDS = ("gaussian", "mask", "saltpepper")
AUTO_STEPS = 4000
AUTO_MIN_EPOCHS = 10
AUTO_MAX_EPOCHS = 1000


def _opt(help_text: str, default: Any, **meta: Any) -> Any:
    """A dataclass field with its help text (shown by ``aekit train --help``)."""
    return field(default=default, metadata={"help": help_text, **meta})


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"`{name}` must be one of {', '.join(allowed)}. Received: {name}={value!r}")


def _check_number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                  low_open: bool = False, integer: bool = False, optional: bool = False) -> None:
    """Check that ``value`` is a finite number in range; the message echoes what was received."""
    if value is None and optional:
        return
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not math.isfinite(value):
        raise ConfigError(f"`{name}` must be {kind}{' or None' if optional else ''}. "
                          f"Received: {name}={value!r}")
    too_low = low is not None and (value < low or (low_open and value == low))
    too_high = high is not None and value > high
    if too_low or too_high:
        parts = []
        if low is not None:
            parts.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            parts.append(f"<= {high:g}")
        raise ConfigError(f"`{name}` must be {' and '.join(parts)}. Received: {name}={value!r}")


def parse_noise(spec: str) -> tuple[str, float]:
    """``KIND:AMOUNT`` of ``--noise`` as (kind, amount): ``gaussian:SIGMA`` (SIGMA > 0),
    ``mask:P`` or ``saltpepper:P`` (0 < P < 1).

    Raises:
        ConfigError: another form, kind or amount.
    """
    kind, _, amount = str(spec).partition(":")
    try:
        value = float(amount)
    except ValueError:
        value = math.nan
    ok = kind in NOISE_KINDS and math.isfinite(value) and value > 0 and (
        kind == "gaussian" or value < 1)
    if not ok:
        raise ConfigError("`noise` must be gaussian:SIGMA (SIGMA > 0), mask:P or saltpepper:P "
                          f"(0 < P < 1), e.g. gaussian:0.3 or mask:0.5. Received: "
                          f"noise={spec!r}")
    return kind, value


def parse_batch_schedule(spec: str) -> float:
    """The growth factor of ``--batch-schedule step:FACTOR`` (FACTOR > 1).

    Raises:
        ConfigError: another form.
    """
    kind, _, factor = str(spec).partition(":")
    try:
        value = float(factor)
    except ValueError:
        value = math.nan
    if kind != "step" or not math.isfinite(value) or value <= 1:
        raise ConfigError("`batch_schedule` must be step:FACTOR with FACTOR > 1 (the batch is "
                          "multiplied by FACTOR where a step decay would cut the learning "
                          f"rate), e.g. step:5. Received: batch_schedule={spec!r}")
    return value


def _sizes(name: str, value: Any, optional: bool = False) -> tuple[int, ...] | None:
    """Normalise a list of layer widths given as a tuple, list or ``"1000,500"`` string."""
    if value is None and optional:
        return None
    if isinstance(value, str):
        parts = [p for p in value.replace(" ", "").split(",") if p]
        try:
            value = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(f"`{name}` must be comma-separated positive integers such as "
                              f"1000,500,250. Received: {name}={value!r}") from None
    if not isinstance(value, (list, tuple)) or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
        raise ConfigError(f"`{name}` must be a list of positive integers such as [1000, 500, 250]. "
                          f"Received: {name}={value!r}")
    return tuple(value)


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is scaled."""

    data: str = _opt("training data: digits, fashion-mnist, fashion-mnist:test, or a path "
                     "(.npy, .npz[:key], .csv, .parquet, IDX, folder of images)", "digits")
    test: str | None = _opt("separate test set (same kinds as --data); default: none, "
                            "a held-back split is scored instead", None)
    test_split: float = _opt("share of --data held back as test set when --test is not given",
                             0.1)
    split_seed: int | None = _opt("seed of the held-back test split: the test rows do not move "
                                  "with --seed, so runs with different seeds are scored on "
                                  "the same rows; give a number for another test split "
                                  "(default: none = aekit's fixed split)", None)
    scaling: str = _opt("scaling: auto (pixels to [0,1], tabular standardized), unit, standard, "
                        "minmax, none", "auto")
    labels: str = _opt("class labels of --data: auto (the data's own: digits, Fashion-MNIST, "
                       "IDX with its labels file, a folder with one subfolder per class, an "
                       ".npz holding y or labels), none, FILE.npy, FILE.npz:KEY or "
                       "FILE.csv:COLUMN; with labels, summary.json gets per-class errors and "
                       "the codes' classification and clustering scores", "auto")
    test_labels: str | None = _opt("class labels of --test (same forms as --labels); default: "
                                   "the test set's own (auto)", None)

    def __post_init__(self) -> None:
        if not isinstance(self.data, str) or not self.data:
            raise ConfigError(f"`data` must be a non-empty data spec. Received: data={self.data!r}")
        for name in ("labels", "test_labels"):
            value = getattr(self, name)
            if not (value is None and name == "test_labels") and (
                    not isinstance(value, str) or not value):
                raise ConfigError(f"`{name}` must be auto, none or a label spec (FILE.npy, "
                                  f"FILE.npz:KEY, FILE.csv:COLUMN). Received: {name}={value!r}")
        _check_number("test_split", self.test_split, low=0.0, high=0.9)
        _check_number("split_seed", self.split_seed, low=0, integer=True, optional=True)
        _check_choice("scaling", self.scaling, SCALINGS)


@dataclass(frozen=True)
class ModelConfig:
    """The autoencoder's architecture and loss."""

    kind: str = _opt("model type", "mlp")
    hidden: tuple[int, ...] | None = _opt(
        "encoder hidden widths, e.g. 1000,500,250; default: chosen from the data (see "
        "aekit.pipeline.data_defaults)", None, auto=True)
    decoder_hidden: tuple[int, ...] | None = _opt(
        "decoder hidden widths (from the code outwards); default: the encoder's mirrored", None)
    latent_dim: int | None = _opt("size of the code (the bottleneck); default: chosen from the "
                                  "data, ceil(features / 4) and at most 32", None, auto=True)
    activation: str = _opt("hidden activation", "relu")
    batch_norm: bool = _opt("batch normalization after each hidden linear layer", False)
    residual: bool = _opt("residual connection around each hidden block (a projection where "
                          "widths differ)", False)
    dropout: float | None = _opt("dropout rate in hidden blocks; None = off", None)
    init: str = _opt("weight initialisation; auto = Glorot for tanh/sigmoid, He for the "
                     "ReLU family", "auto")
    output_activation: str = _opt("output activation; clip = identity clipped to [0,1] (data "
                                  "in [0,1]); auto = clip for pixels with the PCA start, "
                                  "sigmoid for other data in [0,1], identity otherwise",
                                  "auto")
    loss: str = _opt("reconstruction loss (bce needs data in [0,1])", "mse")
    beta: float = _opt("vae: weight of the KL term (beta-VAE)", 1.0)
    conv_channels: tuple[int, ...] = _opt("conv: channels of the stride-2 convolutions, input "
                                          "side first (the decoder mirrors them)", (32, 64))
    pca_init: bool = _opt("mlp: a linear encoder and decoder beside the hidden layers, "
                          "initialised from PCA of the training split, with the hidden path's "
                          "last layers at zero: training starts from PCA's solution", True)

    def __post_init__(self) -> None:
        _check_choice("kind", self.kind, MODEL_KINDS)
        object.__setattr__(self, "hidden", _sizes("hidden", self.hidden, optional=True))
        object.__setattr__(self, "decoder_hidden",
                           _sizes("decoder_hidden", self.decoder_hidden, optional=True))
        object.__setattr__(self, "conv_channels", _sizes("conv_channels", self.conv_channels))
        _check_number("latent_dim", self.latent_dim, low=1, integer=True, optional=True)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_number("dropout", self.dropout, low=0.0, high=0.95, optional=True)
        _check_choice("init", self.init, INITS)
        _check_choice("output_activation", self.output_activation, OUTPUT_ACTIVATIONS)
        _check_choice("loss", self.loss, LOSSES)
        _check_number("beta", self.beta, low=0.0)
        for name in ("batch_norm", "residual", "pca_init"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"`{name}` must be true or false. Received: "
                                  f"{name}={getattr(self, name)!r}")

    @property
    def resolved(self) -> bool:
        """True once the data-dependent sizes (``hidden``, ``latent_dim``) are set."""
        return self.hidden is not None and self.latent_dim is not None

    @property
    def decoder_widths(self) -> tuple[int, ...]:
        """Decoder hidden widths from the code outwards."""
        if self.hidden is None:
            raise ConfigError("`hidden` is not chosen yet: the run pipeline chooses it from the "
                              "data (aekit.pipeline.data_defaults), or give hidden=...")
        return self.decoder_hidden if self.decoder_hidden is not None else self.hidden[::-1]


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer and penalties on the weights and codes."""

    optimizer: str = _opt("gd (full batch), sgd, momentum, nesterov, adam, adamw", "adam")
    lr: float = _opt("peak learning rate; `auto` picks it with the learning-rate range test "
                     "(`aekit lr-find`, same as --lr-auto)", 2e-3)
    momentum: float = _opt("momentum for momentum/nesterov", 0.9)
    beta1: float = _opt("Adam beta1", 0.9)
    beta2: float = _opt("Adam beta2", 0.999)
    eps: float = _opt("Adam epsilon", 1e-8)
    weight_decay: float | None = _opt("decoupled weight decay (AdamW style); adamw defaults "
                                      "to 0.01", None)
    l1: float | None = _opt("L1 penalty on the weights, added to the loss", None)
    l2: float | None = _opt("L2 penalty on the weights, added to the loss", None)
    l1_codes: float | None = _opt("L1 penalty on the codes (sparse autoencoder)", None)

    def __post_init__(self) -> None:
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_number("lr", self.lr, low=0.0, low_open=True)
        _check_number("momentum", self.momentum, low=0.0, high=0.9999)
        _check_number("beta1", self.beta1, low=0.0, high=0.9999)
        _check_number("beta2", self.beta2, low=0.0, high=0.99999)
        _check_number("eps", self.eps, low=0.0, low_open=True)
        for name in ("weight_decay", "l1", "l2", "l1_codes"):
            _check_number(name, getattr(self, name), low=0.0, optional=True)

    @property
    def decoupled_weight_decay(self) -> float:
        """The decoupled weight decay actually applied (adamw's default included)."""
        if self.weight_decay is not None:
            return self.weight_decay
        return 0.01 if self.optimizer == "adamw" else 0.0


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule; every schedule can start with a linear warm-up."""

    schedule: str = _opt("constant, step, exponential, linear, cosine, cosine_restarts, "
                         "one_cycle, plateau", "one_cycle")
    warmup_steps: int = _opt("linear warm-up from 0 over this many steps (not for one_cycle, "
                             "which has its own)", 0)
    final_lr_fraction: float = _opt("exponential/linear/cosine/cosine_restarts: lr at the end "
                                    "(or cycle end) as a fraction of --lr", 0.01)
    step_size_epochs: int | None = _opt("step: epochs between drops; default a third of the run",
                                        None)
    gamma: float = _opt("step: factor applied at each drop", 0.1)
    first_cycle_epochs: int | None = _opt("cosine_restarts: length of the first cycle; default "
                                          "such that 3 cycles fill the run", None)
    cycle_mult: float = _opt("cosine_restarts: each cycle is this many times longer", 2.0)
    restart_decay: float = _opt("cosine_restarts: peak lr multiplier per restart", 1.0)
    pct_start: float = _opt("one_cycle: share of the run spent rising to --lr", 0.25)
    div_factor: float = _opt("one_cycle: start lr is --lr / div_factor", 25.0)
    final_div_factor: float = _opt("one_cycle: end lr is start lr / final_div_factor", 1e3)
    plateau_factor: float = _opt("plateau: factor applied when validation loss stalls", 0.3)
    plateau_patience_epochs: int = _opt("plateau: epochs without improvement before a cut", 3)
    min_lr: float = _opt("plateau: lower bound of the lr", 1e-6)

    def __post_init__(self) -> None:
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_number("warmup_steps", self.warmup_steps, low=0, integer=True)
        _check_number("final_lr_fraction", self.final_lr_fraction, low=0.0, high=1.0)
        _check_number("step_size_epochs", self.step_size_epochs, low=1, integer=True, optional=True)
        _check_number("gamma", self.gamma, low=0.0, high=1.0, low_open=True)
        _check_number("first_cycle_epochs", self.first_cycle_epochs, low=1, integer=True,
                      optional=True)
        _check_number("cycle_mult", self.cycle_mult, low=1.0)
        _check_number("restart_decay", self.restart_decay, low=0.0, high=1.0, low_open=True)
        _check_number("pct_start", self.pct_start, low=0.0, high=1.0, low_open=True)
        _check_number("div_factor", self.div_factor, low=1.0)
        _check_number("final_div_factor", self.final_div_factor, low=1.0)
        _check_number("plateau_factor", self.plateau_factor, low=0.0, high=1.0, low_open=True)
        _check_number("plateau_patience_epochs", self.plateau_patience_epochs, low=0, integer=True)
        _check_number("min_lr", self.min_lr, low=0.0)
        if self.schedule == "one_cycle" and self.warmup_steps:
            raise ConfigError("`warmup_steps` does not apply to the one_cycle schedule, which "
                              "has its own warm-up (--pct-start: the share of the run spent "
                              f"rising to --lr). Received: warmup_steps={self.warmup_steps}; "
                              "use --pct-start, or another --schedule with --warmup-steps")


@dataclass(frozen=True)
class TrainConfig:
    """The training loop."""

    epochs: int | None = _opt("passes over the training split; None = auto: enough for about "
                              f"{AUTO_STEPS} steps, at least {AUTO_MIN_EPOCHS} and at most "
                              f"{AUTO_MAX_EPOCHS} epochs", None)
    batch_size: int | None = _opt("samples per step (ignored by gd, which uses the whole "
                                  "split); default: chosen from the data, 256 for 10,000 "
                                  "rows or more, fewer for small tables", None, auto=True)
    shuffle: bool = _opt("reshuffle the training split every epoch", True)
    noise: str | None = _opt("denoising: corrupt the training inputs on the fly (fresh noise "
                             "every step; the clean rows are the target): gaussian:SIGMA, "
                             "mask:P (values set to 0) or saltpepper:P, in the scaled space; "
                             "validation and test rows are corrupted once, with fixed seeds",
                             None)
    time_budget: float | None = _opt(
        "seconds of training the run may take: it plans its length (the schedule's horizon) "
        "from its measured speed, re-plans every epoch, and stops with the best weights when "
        "the next epoch would not fit; --epochs is then an upper bound (default 1000); on "
        "images, 5 ms or more per training row trains --hidden 1000,500,250 with "
        "--weight-decay 0.5 unless they are set", None)
    batch_schedule: str | None = _opt(
        "grow the batch instead of (or with) decaying the learning rate: step:FACTOR "
        "multiplies the batch by FACTOR every --step-size-epochs epochs (default: at each "
        "third of the run, where --schedule step would cut the rate; under --time-budget "
        "give --step-size-epochs or --epochs), at most the training rows (Smith et al., "
        "'Don't decay the learning rate, increase the batch size')", None)
    balance: str = _opt("class imbalance (needs labels): none; weights = each row's loss "
                        "weighted by the inverse of its class's frequency; sampler = "
                        "class-balanced batches (rows drawn with replacement, every class "
                        "equally often)", "none")
    validation_split: float | str = _opt(
        "share of the training data held out for validation; auto = a tenth, but at least "
        "200 rows (at most a quarter) on small data, where the best epoch and the comparison "
        "with PCA need enough rows to be trusted", "auto")
    clip_norm: float | None = _opt("clip gradients to this global L2 norm", None)
    clip_value: float | None = _opt("clip each gradient element to [-v, v]", None)
    early_stopping_patience: int | str | None = _opt(
        "stop after this many epochs without a better validation loss and restore the best "
        "weights; auto = chosen from the run's length (a tenth of its epochs, at least 5); "
        "None = off", "auto")
    seed: int = _opt("random seed: same seed, same machine, same result bit for bit", 0)
    device: str = _opt("auto, cpu or cuda", "auto")
    precision: str = _opt("arithmetic of the training step: fp32; tf32 (CUDA: TensorFloat-32 "
                          "matrix products; on the CPU the same as fp32); bf16 (forward pass "
                          "and loss autocast to bfloat16, CPU or CUDA); auto = tf32 on CUDA, "
                          "fp32 on the CPU", "auto")
    threads: int | None = _opt("CPU threads for PyTorch; default: all cores", None)
    progress: bool = _opt("show a progress bar (plain log lines when not a terminal)", True)
    diagnostics_every_steps: int | None = _opt(
        "measure per-layer gradients, weights, updates and activations every N steps "
        "(written to metrics.jsonl, read by `aekit diagnose`); None = off", 50)
    auto_fix: bool | str = _opt(
        "the training doctor's remedies beyond the rollback on NaN/Inf (always on): auto = "
        "also roll back a divergence (restore the last good state, cut the lr), while "
        "rollbacks are left; true = that, a warm restart on plateaus, and an error once the "
        "rollbacks are spent; false = neither", "auto")
    max_rollbacks: int = _opt("rollbacks to the last good state allowed before the run stops "
                              "with an error", 3)
    rollback_lr_factor: float = _opt("factor applied to the learning rate at each rollback",
                                     0.5)
    lr_auto: bool = _opt("pick --lr with the learning-rate range test (`aekit lr-find`) "
                         "before training", False)
    report: bool = _opt("write RUN_DIR/report.html (`aekit report`) at the end of the run",
                        False)
    tensorboard: str | None = _opt("write TensorBoard event files (losses, lr, diagnostics, "
                                   "reconstructions) into this folder; None = off", None)
    checkpoint_every_steps: int | None = _opt(
        "write a checkpoint (full training state, the last two kept) every N steps, at least "
        "every 60 s of training, and at the end; None = by time and at the end only", 200)
    resume: bool = _opt("continue the run in --out from its newest valid checkpoint (same "
                        "options and data required)", False)
    restore_best_weights: bool = _opt(
        "end with the weights of the epoch that had the lowest validation loss (needs a "
        "validation split); small data sets overfit late in a run", True)
    nproc: int = _opt("processes for data-parallel training on this machine: `aekit train` "
                      "re-launches itself under torchrun (`torch.distributed.run`); 1 = off",
                      1)

    def __post_init__(self) -> None:
        _check_number("epochs", self.epochs, low=1, integer=True, optional=True)
        _check_number("nproc", self.nproc, low=1, integer=True)
        _check_number("batch_size", self.batch_size, low=1, integer=True, optional=True)
        if self.validation_split != "auto":
            _check_number("validation_split", self.validation_split, low=0.0, high=0.9)
        _check_number("clip_norm", self.clip_norm, low=0.0, low_open=True, optional=True)
        _check_number("clip_value", self.clip_value, low=0.0, low_open=True, optional=True)
        if self.early_stopping_patience != "auto":
            _check_number("early_stopping_patience", self.early_stopping_patience, low=1,
                          integer=True, optional=True)
        _check_number("seed", self.seed, low=0, integer=True)
        _check_choice("balance", self.balance, BALANCES)
        if self.noise is not None:
            parse_noise(self.noise)
        if self.batch_schedule is not None:
            parse_batch_schedule(self.batch_schedule)
        _check_number("time_budget", self.time_budget, low=0.0, low_open=True, optional=True)
        _check_choice("device", self.device, DEVICES)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_number("threads", self.threads, low=1, integer=True, optional=True)
        _check_number("diagnostics_every_steps", self.diagnostics_every_steps, low=1,
                      integer=True, optional=True)
        _check_number("max_rollbacks", self.max_rollbacks, low=0, integer=True)
        _check_number("rollback_lr_factor", self.rollback_lr_factor, low=0.0, high=1.0,
                      low_open=True)
        _check_number("checkpoint_every_steps", self.checkpoint_every_steps, low=1,
                      integer=True, optional=True)
        if not isinstance(self.resume, bool):
            raise ConfigError(f"`resume` must be true or false. Received: resume={self.resume!r}")
        if not isinstance(self.auto_fix, bool) and self.auto_fix != "auto":
            raise ConfigError("`auto_fix` must be true, false or \"auto\". Received: "
                              f"auto_fix={self.auto_fix!r}")
        if not isinstance(self.lr_auto, bool):
            raise ConfigError("`lr_auto` must be true or false. Received: "
                              f"lr_auto={self.lr_auto!r}")


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig,
                             "schedule": ScheduleConfig, "train": TrainConfig}


@dataclass(frozen=True)
class RunConfig:
    """Everything needed to rebuild a model and replay a run (saved as ``config.json``)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Sectioned, JSON-serialisable dictionary."""
        out = {}
        for name in SECTIONS:
            section = dataclasses.asdict(getattr(self, name))
            out[name] = {k: list(v) if isinstance(v, tuple) else v for k, v in section.items()}
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunConfig":
        """Build from a flat or sectioned dictionary; unknown keys raise :class:`ConfigError`."""
        return cls().replace(**flatten(values))

    def replace(self, **changes: Any) -> "RunConfig":
        """A copy with some fields changed, named flat (``latent_dim=8``).

        ``lr="auto"`` stands for ``lr_auto=True`` (the range test picks the rate).
        """
        if isinstance(changes.get("lr"), str) and changes["lr"].strip().lower() == "auto":
            changes = {k: v for k, v in changes.items() if k != "lr"}
            changes["lr_auto"] = True
        per_section: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        for key, value in changes.items():
            per_section[section_of(key)][key] = value
        kwargs = {}
        for name, values in per_section.items():
            current = getattr(self, name)
            kwargs[name] = dataclasses.replace(current, **values) if values else current
        return RunConfig(**kwargs)


def field_names() -> dict[str, str]:
    """Map of every option name to the section that holds it."""
    return {f.name: section for section, klass in SECTIONS.items() for f in fields(klass)}


def section_of(key: str) -> str:
    """The section holding option ``key``; unknown keys raise with the list of known ones."""
    names = field_names()
    if key not in names:
        raise ConfigError(f"Unknown option `{key}`. Allowed options: {', '.join(sorted(names))}")
    return names[key]


def flatten(values: dict[str, Any]) -> dict[str, Any]:
    """Turn a sectioned config (as in config.json) into flat option names."""
    if not isinstance(values, dict):
        raise ConfigError(f"A configuration must be a mapping of options. Received: {values!r}")
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if key in SECTIONS and isinstance(value, dict):
            for inner_key, inner in value.items():
                if section_of(inner_key) != key:
                    raise ConfigError(f"Option `{inner_key}` belongs in section "
                                      f"`{section_of(inner_key)}`, not `{key}`")
                flat[inner_key] = inner
        else:
            section_of(key)
            flat[key] = value
    return flat


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or TOML config file into flat option names.

    Raises:
        ConfigError: the file is missing, unreadable or names unknown options.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist")
    try:
        if path.suffix.lower() == ".toml":
            values = tomllib.loads(path.read_text())
        elif path.suffix.lower() == ".json":
            values = json.loads(path.read_text())
        else:
            raise ConfigError(f"Config file {path} must end in .json or .toml")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Config file {path} could not be parsed: {exc}") from exc
    return flatten(values)
