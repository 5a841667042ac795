"""``aekit lr-find``: the learning-rate range test (:mod:`aekit.training.lr_range`) on a
data set prepared as ``aekit train`` prepares it, and its curve as JSON and PNG."""

from __future__ import annotations

import math
from pathlib import Path

from aekit.config import RunConfig
from aekit.serialization import write_json
from aekit.training.lr_range import NUM_STEPS, LRFindResult, lr_find


def save_curve(result: LRFindResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``lr_find.json`` and ``lr_find.png`` (matplotlib, Agg) into ``out_dir``."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from aekit.serialization import atomic_write_bytes

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out_dir / "lr_find.json", out_dir / "lr_find.png"
    write_json(json_path, result.to_dict())
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result.lrs, [v if math.isfinite(v) else float("nan") for v in result.losses],
            alpha=0.35, label="loss per step")
    ax.plot(result.lrs, result.smoothed, label="smoothed")
    ax.axvline(result.suggestion, color="C2", linestyle="--",
               label=f"suggestion {result.suggestion:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(png_path, buf.getvalue())
    return json_path, png_path


def lr_find_on_data(cfg: RunConfig, start_lr: float = 1e-6, end_lr: float = 1.0,
                    num_steps: int = NUM_STEPS) -> LRFindResult:
    """Prepare ``cfg``'s data and model as ``aekit train`` does (the same split, scaler,
    defaults and PCA start) and run :func:`lr_find` on the training rows only (never the
    validation or test rows).

    Raises:
        DataError / ConfigError: bad data or options.
    """
    from aekit.api import Autoencoder
    from aekit.pipeline import prepare_spec
    from aekit.pipeline.fit import training_rows

    run = prepare_spec(cfg)  # a .npy bigger than memory: rows spread over the file
    ae = Autoencoder(config=run.config)
    model = ae.build_prepared(run)
    n_rows = num_steps * run.config.train.batch_size
    if run.stream is not None:
        n_rows = min(n_rows, run.stream.chunk_rows)
    return lr_find(model, run.config, training_rows(run, ae.device, n_rows), start_lr,
                   end_lr, num_steps)
