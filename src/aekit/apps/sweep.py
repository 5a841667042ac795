"""Choose the latent size: train one model per size, everything else equal, beside PCA.

    result = sweep(RunConfig().replace(data="fashion-mnist", test="fashion-mnist:test"),
                   latent_dims=[2, 4, 8, 16, 32, 64], out_dir="sweep")
    print(result.recommended, result.reason)

Every member uses the same configuration (architecture, optimizer, schedule, epochs, seed), the
same training, validation and test rows (prepared once by :mod:`aekit.pipeline`); only
``latent_dim`` changes. PCA with the same number of components is fitted on the same scaled
training split. The size is chosen on the validation error; the test error of every size is
reported beside it and never takes part in the choice. Members run one after the
other in this process with one configuration that the hand-written fast path covers (a plain
MLP), which on a few CPU cores is cheaper than running them side by side. ``max_train_samples``
subsamples the training data (the same subsample for every member) to make a sweep affordable.

Recommendation: with sizes ``k1 < k2 < ...`` and validation errors ``e1, e2, ...``, the gain of
doubling between neighbours is ``1 - (e_next / e_k) ** (1 / log2(k_next / k))`` (the relative
error cut per doubling of the size, so sizes need not be powers of two). The recommended size is
the smallest ``k`` from which every further doubling gains less than ``threshold`` (default
10%); if the largest size still gains more, it is recommended with a note to try larger sizes.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from aekit.api import Autoencoder
from aekit.config import RunConfig
from aekit.errors import ConfigError
from aekit.data import Dataset
from aekit.data.out_of_core import should_stream
from aekit.pipeline import (PreparedRun, check_latent_dims, errors_vs_pca, load_splits, prepare,
                            prepare_spec, subsample_rows, subset, validation_errors,
                            with_config)
from aekit.serialization import atomic_write_bytes, write_json


@dataclass(frozen=True)
class SweepRow:
    """One member of the sweep: test errors (MSE in the model's scaled space) and cost."""

    latent_dim: int
    val_mse: float
    pca_val_mse: float
    test_mse: float
    pca_test_mse: float
    train_seconds: float
    epochs: int
    fast_path: bool


@dataclass(frozen=True)
class SweepResult:
    """The table, the recommended size and why."""

    rows: list[SweepRow]
    recommended: int
    reason: str
    threshold: float
    n_train: int
    n_test: int
    test_source: str

    def table(self) -> str:
        """The table in Markdown."""
        lines = ["| latent dim | aekit val MSE | gain of doubling (val) | aekit test MSE | "
                 "PCA test MSE | aekit / PCA (test) | train s |",
                 "|---:|---:|---:|---:|---:|---:|---:|"]
        gains = doubling_gains([r.latent_dim for r in self.rows], [r.val_mse for r in self.rows])
        for row, gain in zip(self.rows, [*gains, None]):
            gain_text = f"{100 * gain:.1f}%" if gain is not None else "-"
            lines.append(f"| {row.latent_dim} | {row.val_mse:.5f} | {gain_text} | "
                         f"{row.test_mse:.5f} | {row.pca_test_mse:.5f} | "
                         f"{row.test_mse / max(row.pca_test_mse, 1e-30):.2f} | "
                         f"{row.train_seconds:.1f} |")
        return "\n".join(lines)


def parse_sizes(text: str | Sequence[int]) -> list[int]:
    """``"2,4,8"`` or a list -> sorted distinct positive sizes (at least two).

    Raises:
        ConfigError: anything else.
    """
    try:
        sizes = [int(p) for p in text.split(",") if p.strip()] if isinstance(text, str) \
            else [int(v) for v in text]
    except (TypeError, ValueError):
        sizes = []
    if len(set(sizes)) < 2 or min(sizes) < 1:
        raise ConfigError("`latent_dims` must be at least two distinct positive integers such "
                          f"as 2,4,8,16. Received: latent_dims={text!r}")
    return sorted(set(sizes))


def doubling_gains(sizes: Sequence[int], errors: Sequence[float]) -> list[float]:
    """Relative error cut per doubling of the size between each pair of neighbours."""
    gains = []
    for (k, e), (k_next, e_next) in zip(zip(sizes, errors), zip(sizes[1:], errors[1:])):
        doublings = math.log2(k_next / k)
        ratio = e_next / e if e > 0 else 1.0
        gains.append(1.0 - max(ratio, 0.0) ** (1.0 / doublings))
    return gains


def recommend_size(sizes: Sequence[int], errors: Sequence[float], threshold: float = 0.1
                   ) -> tuple[int, str]:
    """The smallest size from which every further doubling gains less than ``threshold``.

    Returns:
        The size and a sentence saying why.
    """
    gains = doubling_gains(sizes, errors)
    for i, k in enumerate(sizes[:-1]):
        if all(g < threshold for g in gains[i:]):
            return k, (f"doubling from {k} cuts the validation error by {100 * gains[i]:.1f}% "
                       f"(below the {100 * threshold:.0f}% threshold), and no larger size "
                       f"gains more than that threshold; error at {k}: {errors[i]:.5f}, at "
                       f"{sizes[-1]}: {errors[-1]:.5f}")
    return sizes[-1], (f"the error still falls by {100 * gains[-1]:.1f}% per doubling between "
                       f"{sizes[-2]} and {sizes[-1]} (threshold {100 * threshold:.0f}%): the "
                       "largest size tried is recommended; try larger sizes")


def _train_member(run: PreparedRun, k: int) -> SweepRow:
    member = with_config(run, latent_dim=k)
    ae = Autoencoder(config=member.config)
    t0 = time.perf_counter()
    ae.fit_prepared(member)
    seconds = time.perf_counter() - t0
    val = validation_errors(ae, member)
    test = errors_vs_pca(ae.reconstruct_scaled, ae.scaler, member.pca, member.test.x)
    return SweepRow(latent_dim=k, val_mse=val["val_mse"], pca_val_mse=val["pca_val_mse"],
                    test_mse=test["test_mse"], pca_test_mse=test["pca_test_mse"],
                    train_seconds=seconds, epochs=len(ae.history.epochs),
                    fast_path=bool(ae.trainer.use_fastpath))


def sweep_data(cfg: RunConfig, max_train_samples: int | None = None
               ) -> tuple[Dataset, Dataset | None, str]:
    """The rows a sweep learns from (``max_train_samples`` of them at most, drawn as
    :func:`~aekit.pipeline.subsample_rows` draws them), its test set and the test's origin."""
    data, test, test_source = load_splits(cfg)
    keep = subsample_rows(data.n_samples, max_train_samples, cfg.train.seed)
    return (subset(data, keep) if keep is not None else data), test, test_source


def sweep_run(cfg: RunConfig, sizes: Sequence[int],
              max_train_samples: int | None = None) -> PreparedRun:
    """The prepared run every member shares: streamed from a ``.npy`` bigger than memory
    (without ``max_train_samples``), else in memory.

    Raises:
        ConfigError: a size not smaller than the feature count.
    """
    if max_train_samples is None and should_stream(cfg.data.data):
        run = prepare_spec(cfg)  # checks the first (smallest) size against the file
        check_latent_dims(sizes, run.n_features)
        return run
    data, test, test_source = sweep_data(cfg, max_train_samples)
    check_latent_dims(sizes, data.n_features)
    return prepare(cfg, data, test=test, test_source=test_source)


def sweep(cfg: RunConfig, latent_dims: Sequence[int], out_dir: str | Path,
          threshold: float = 0.1, max_train_samples: int | None = None,
          log: bool = True) -> SweepResult:
    """Train one model per latent size and write ``sweep.json``, ``sweep.md``, ``sweep.png``.

    Args:
        cfg: the configuration shared by every member (``latent_dim`` is replaced).
        latent_dims: sizes to try.
        out_dir: folder for the results.
        threshold: gain per doubling of the validation error below which a larger size is not
            worth it (0..1).
        max_train_samples: train on a random subsample of this many samples (same for all).
        log: print one line per member.

    Raises:
        ConfigError / DataError: bad options or data, before any training.
    """
    sizes = parse_sizes(latent_dims)
    if not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise ConfigError(f"`threshold` must be between 0 and 1. Received: threshold={threshold!r}")
    if cfg.train.validation_split != "auto" and cfg.train.validation_split <= 0:
        raise ConfigError("a sweep chooses the size on validation rows: --validation-split "
                          f"must be > 0. Received: validation_split={cfg.train.validation_split}")
    run = sweep_run(cfg.replace(latent_dim=sizes[0]), sizes, max_train_samples)
    test = run.test
    if test is None:
        raise ConfigError("a sweep needs a test set: give --test SPEC or a --test-split > 0")
    rows = []
    for k in sizes:
        rows.append(_train_member(run, k))
        if log:
            r = rows[-1]
            print(f"latent {k:>4}: val MSE {r.val_mse:.5f}  test MSE {r.test_mse:.5f}  PCA "
                  f"{r.pca_test_mse:.5f}  ({r.epochs} epochs, {r.train_seconds:.1f}s, fast path "
                  f"{r.fast_path})", flush=True)
    best, reason = recommend_size(sizes, [r.val_mse for r in rows], threshold)
    result = SweepResult(rows, best, reason, threshold, len(run.train_index), test.n_samples,
                         run.test_source)
    write_results(result, cfg, Path(out_dir))
    return result


def write_results(result: SweepResult, cfg: RunConfig, out_dir: Path) -> None:
    """``sweep.json`` (rows, recommendation, config), ``sweep.md`` (table), ``sweep.png``."""
    write_json(out_dir / "sweep.json", {
        "rows": [asdict(r) for r in result.rows], "recommended_latent_dim": result.recommended,
        "reason": result.reason, "threshold": result.threshold, "n_train": result.n_train,
        "n_test": result.n_test, "test": result.test_source, "config": cfg.to_dict()})
    text = (f"{result.table()}\n\nRecommended latent size: **{result.recommended}** — "
            f"{result.reason}.\n")
    atomic_write_bytes(out_dir / "sweep.md", text.encode())
    atomic_write_bytes(out_dir / "sweep.png", plot_png(result))


def plot_png(result: SweepResult) -> bytes:
    """Test error against latent size (log-log), aekit and PCA, recommended size marked."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    sizes = [r.latent_dim for r in result.rows]
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    ax.plot(sizes, [r.test_mse for r in result.rows], "o-", label="aekit autoencoder")
    ax.plot(sizes, [r.pca_test_mse for r in result.rows], "s--", label="PCA")
    ax.axvline(result.recommended, color="gray", linestyle=":",
               label=f"recommended: {result.recommended}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sizes, [str(k) for k in sizes])
    ax.set_xlabel("latent size")
    ax.set_ylabel("test MSE (scaled data)")
    ax.set_title(f"{result.test_source}: test error vs latent size")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
