"""``aekit.Autoencoder``: the Keras-like face of aekit (fit, encode, decode, save, load).

    ae = aekit.Autoencoder(latent_dim=32, hidden=(64, 32))
    history = ae.fit(x, epochs=50, batch_size=32, validation_split=0.1)
    z = ae.encode(x); x_hat = ae.decode(z); ae.save("model_dir")

Arrays in and out are numpy (torch tensors are accepted). Data is scaled as DESIGN.md says
(pixels to [0, 1], tabular standardized with the training split's statistics) and the scaling
is undone on decode, so ``decode`` returns values in the units of the input.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from aekit import __version__
from aekit.config import RunConfig
from aekit.data import Dataset, Scaler, check_n_features
from aekit.data.dataset import dataset_from_array
from aekit.errors import ConfigError, FormatError, TrainingError
from aekit.models import build_model
from aekit.serialization import (load_state_into, load_tensors, read_json, save_tensors,
                                 write_json)
from aekit.training.callbacks import Callback, ProgressBar
from aekit.training.doctor import default_callbacks
from aekit.training.findings import findings_of
from aekit.training.trainer import EVAL_BATCH, History, Trainer, resolve_device

MODEL_FORMAT = "aekit-model"
MODEL_FORMAT_VERSION = 1


def as_dataset(x: Any, source: str = "array") -> Dataset:
    """Wrap a numpy array, torch tensor or :class:`Dataset` as a validated :class:`Dataset`."""
    if isinstance(x, Dataset):
        return x
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return dataset_from_array(np.asarray(x), source)


def choose_scaler(ds: Dataset, mode: str) -> Scaler:
    """The scaler for ``mode``; ``auto`` leaves tabular data already within [0, 1] unscaled."""
    if mode == "auto" and ds.kind == "tabular" and ds.x.size and \
            float(ds.x.min()) >= 0.0 and float(ds.x.max()) <= 1.0:
        return Scaler("none")
    return Scaler.for_dataset(ds, mode)


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle ``range(n)`` with ``seed`` and hold back ``fraction`` of it: (kept, held)."""
    order = np.random.default_rng(seed).permutation(n)
    n_held = int(round(n * fraction))
    if fraction > 0 and n_held == 0 and n > 1:
        n_held = 1
    return np.sort(order[n_held:]), np.sort(order[:n_held])


class Autoencoder:
    """An autoencoder trained by gradient descent on a reconstruction loss.

    Args:
        latent_dim: size of the code.
        hidden: encoder hidden widths; the decoder mirrors them unless ``decoder_hidden`` is set.
        config: a full :class:`RunConfig` to start from (keyword options override it).
        **options: any option of ``aekit train`` by its flat name (``activation="tanh"``,
            ``optimizer="sgd"``, ``schedule="cosine"``, ``l2=1e-4``, ``batch_norm=True``...).

    Raises:
        ConfigError: an option is unknown or out of range.
    """

    def __init__(self, latent_dim: int | None = None, hidden: Sequence[int] | None = None, *,
                 config: RunConfig | None = None, **options: Any) -> None:
        if latent_dim is not None:
            options["latent_dim"] = latent_dim
        if hidden is not None:
            options["hidden"] = tuple(hidden)
        self.config = (config or RunConfig()).replace(**options)
        self.model: torch.nn.Module | None = None
        self.scaler: Scaler | None = None
        self.sample_shape: tuple[int, ...] | None = None
        self.data_kind: str | None = None
        self.output_activation: str | None = None
        self.history: History | None = None
        self.train_index: np.ndarray | None = None
        self.device = torch.device("cpu")

    # -- training -----------------------------------------------------------------------------
    def fit(self, x: Any, epochs: int | None = None, batch_size: int | None = None,
            shuffle: bool | None = None, validation_split: float | None = None,
            validation_data: Any = None, callbacks: Sequence[Callback] = (),
            verbose: bool | None = None) -> History:
        """Train on ``x`` (samples in rows; image stacks ``(n, h, w[, c])`` are accepted).

        Args:
            x: training data: numpy array, torch tensor or :class:`aekit.data.Dataset`.
            epochs, batch_size, shuffle, validation_split: override the configuration.
            validation_data: a separate validation set; replaces ``validation_split``.
            callbacks: extra hooks around each step and epoch.
            verbose: progress bar / per-epoch lines (default: the ``progress`` option).

        Returns:
            The :class:`History` of per-epoch logs (``history["val_loss"]``).

        Raises:
            DataError: invalid data. ConfigError: invalid options.
            TrainingError: the model fails on a first batch, or training cannot go on.
        """
        changes = {k: v for k, v in dict(epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                                         validation_split=validation_split).items()
                   if v is not None}
        if verbose is not None:
            changes["progress"] = bool(verbose)
        cfg = self.config = self.config.replace(**changes)
        ds = as_dataset(x)
        train_idx, val_idx = split_indices(ds.n_samples, 0.0 if validation_data is not None
                                           else cfg.train.validation_split, cfg.train.seed)
        if len(train_idx) == 0:
            raise ConfigError(f"`validation_split` leaves no training samples out of "
                              f"{ds.n_samples}. Received: validation_split="
                              f"{cfg.train.validation_split}")
        self.train_index = train_idx
        self.sample_shape, self.data_kind = ds.sample_shape, ds.kind
        self.scaler = choose_scaler(ds, cfg.data.scaling).fit(ds.x[train_idx])
        x_train = self.scaler.transform_rows(ds.x, train_idx)
        if validation_data is not None:
            val = as_dataset(validation_data, "validation_data")
            check_n_features(val, ds.n_features, "validation_data")
            x_val = self.scaler.transform(val.x)
        else:
            x_val = self.scaler.transform(ds.x[val_idx]) if len(val_idx) else None
        self.output_activation = self._resolve_output(x_train)
        self._apply_threads()
        torch.manual_seed(cfg.train.seed)
        self.device = resolve_device(cfg.train.device)
        self.model = self._build(ds.n_features)
        t_train = torch.from_numpy(x_train).to(self.device)
        t_val = torch.from_numpy(x_val).to(self.device) if x_val is not None else None
        self._sanity_check(t_train)
        if cfg.train.lr_auto:  # the learning-rate range test picks --lr (aekit lr-find)
            from aekit.apps.lr_find import auto_lr

            cfg = self.config = auto_lr(self.model, cfg, t_train)
        all_callbacks = list(callbacks)
        all_callbacks += default_callbacks(cfg.train, t_train, all_callbacks)
        if cfg.train.tensorboard:  # --tensorboard DIR
            from aekit.training.tensorboard import TensorBoardWriter

            all_callbacks.append(TensorBoardWriter(cfg.train.tensorboard, t_val if t_val is not
                                                   None and len(t_val) else t_train,
                                                   self.sample_shape))
        if cfg.train.progress:
            all_callbacks.append(ProgressBar())
        self.trainer = Trainer(self.model, cfg, all_callbacks)
        self.history = self.trainer.fit(t_train, t_val)
        return self.history

    def findings(self) -> list[dict[str, Any]]:
        """What the training doctor found in the last :meth:`fit`, most important first.

        Each finding is a dictionary with ``kind`` (e.g. ``"vanishing_gradients"``),
        ``severity``, ``step``, ``message``, ``advice`` and ``evidence`` (the numbers behind
        it): the same list as ``summary.json``'s ``"findings"`` and ``aekit diagnose``. An
        empty list means nothing went wrong that the doctor checks for.

        Raises:
            TrainingError: the model has not been trained.
        """
        if getattr(self, "trainer", None) is None:
            raise TrainingError("findings() needs a trained model: call fit() first")
        return findings_of(self.trainer)

    def _apply_threads(self) -> None:
        if self.config.train.threads is not None:
            torch.set_num_threads(self.config.train.threads)

    def _resolve_output(self, x_train: np.ndarray) -> str:
        model_cfg = self.config.model
        in_unit_range = bool(x_train.size) and float(x_train.min()) >= 0.0 and \
            float(x_train.max()) <= 1.0
        if model_cfg.loss == "bce" and not in_unit_range:
            raise ConfigError("`loss` bce needs data scaled to [0, 1]; this data after scaling "
                              f"{self.scaler.mode!r} spans [{x_train.min():.3g}, "
                              f"{x_train.max():.3g}]. Use --loss mse or --scaling minmax")
        if model_cfg.output_activation != "auto":
            return model_cfg.output_activation
        return "sigmoid" if in_unit_range else "identity"

    def _build(self, n_features: int) -> torch.nn.Module:
        model = build_model(self.config.model, n_features, self.output_activation,
                            self.config.optim.l1_codes or 0.0, self.sample_shape)
        return model.to(self.device)

    def _sanity_check(self, x_train: torch.Tensor) -> None:
        """Run one small batch through the model before training (fail before the first step)."""
        try:
            with torch.no_grad():
                out = self.model(x_train[: min(8, len(x_train))] if len(x_train) > 1
                                 else x_train.repeat(2, 1))
        except RuntimeError as exc:
            raise TrainingError(f"the model fails on a first batch: {exc}. Likely causes: a "
                                "feature count that does not match the model, or batch "
                                "normalization with a single sample") from exc
        if not math.isfinite(out.loss.item()):
            raise TrainingError("the loss of a first batch is not finite: check the data "
                                "scaling (--scaling) and the initialisation (--init)")

    # -- using the model ---------------------------------------------------------------------
    def _require_fitted(self) -> torch.nn.Module:
        if self.model is None or self.scaler is None:
            raise ConfigError("This Autoencoder is not trained yet: call fit() or "
                              "aekit.load(dir) first")
        return self.model

    def _scaled(self, x: Any, source: str) -> torch.Tensor:
        model = self._require_fitted()
        ds = as_dataset(x, source)
        # A loaded Dataset knows its file: name it ("data.npy has 6 features...")
        check_n_features(ds, model.n_features, ds.source if isinstance(x, Dataset) else source)
        return torch.from_numpy(self.scaler.transform(ds.x)).to(self.device)

    @torch.inference_mode()
    def _batched(self, fn: Any, t: torch.Tensor) -> np.ndarray:
        self._require_fitted().eval()
        parts = [fn(t[i:i + EVAL_BATCH]).cpu() for i in range(0, t.shape[0], EVAL_BATCH)]
        return torch.cat(parts).numpy() if parts else np.zeros((0,), np.float32)

    def encode(self, x: Any) -> np.ndarray:
        """Codes of ``x``: (n, latent_dim) float32."""
        t = self._scaled(x, "encode input")
        return self._batched(self.model.encode, t)

    def decode(self, z: Any) -> np.ndarray:
        """Reconstructions from codes, in the units of the training data: (n, n_features)."""
        model = self._require_fitted()
        z = torch.as_tensor(np.asarray(z.detach().cpu() if isinstance(z, torch.Tensor) else z),
                            dtype=torch.float32)
        if z.ndim != 2 or z.shape[1] != model.cfg.latent_dim:
            raise ConfigError(f"codes must have shape (n, {model.cfg.latent_dim}). "
                              f"Received: shape {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise ConfigError("codes contain NaN or infinite values")
        x_hat = self._batched(model.decode, z.to(self.device))
        return self.scaler.inverse_transform(x_hat)

    def reconstruct(self, x: Any) -> np.ndarray:
        """``decode(encode(x))`` in the units of the input."""
        x_hat = self._batched(lambda t: self.model(t).x_hat, self._scaled(x, "input"))
        return self.scaler.inverse_transform(x_hat)

    def score(self, x: Any) -> dict[str, float]:
        """Reconstruction error of ``x`` in the scaled space the model works in.

        Returns:
            ``mse`` (mean over all values) and ``sse_per_sample`` (squared error summed over a
            sample's features, averaged over samples).
        """
        t = self._scaled(x, "input")
        x_hat = torch.from_numpy(self._batched(lambda b: self.model(b).x_hat, t)).to(self.device)
        return reconstruction_errors(t, x_hat)

    # -- files -------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """What ``config.json`` holds: everything needed to rebuild the model and replay."""
        model = self._require_fitted()
        return {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION,
                "aekit_version": __version__, "config": self.config.to_dict(),
                "n_features": model.n_features, "sample_shape": list(self.sample_shape),
                "data_kind": self.data_kind, "output_activation": self.output_activation,
                "scaler": self.scaler.to_dict()}

    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``directory`` (atomically)."""
        model = self._require_fitted()
        directory = Path(directory)
        save_tensors(directory / "model.safetensors", model.state_dict(),
                     metadata={"format": MODEL_FORMAT})
        write_json(directory / "config.json", self.metadata())
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Autoencoder":
        """Rebuild a saved model; malformed or mismatching files raise :class:`FormatError`."""
        directory = Path(directory)
        if not directory.is_dir():
            raise FormatError(f"{directory}: no such model folder (expected a folder with "
                              "config.json and model.safetensors, as `aekit train --out` writes)")
        meta = read_json(directory / "config.json", "model config")
        if meta.get("format") != MODEL_FORMAT:
            raise FormatError(f"{directory / 'config.json'}: not an aekit model config "
                              f"(format={meta.get('format')!r})")
        try:
            config = RunConfig.from_dict(meta["config"])
            ae = cls(config=config)
            ae.scaler = Scaler.from_dict(meta["scaler"])
            ae.sample_shape = tuple(int(v) for v in meta["sample_shape"])
            ae.data_kind = str(meta["data_kind"])
            ae.output_activation = str(meta["output_activation"])
            n_features = int(meta["n_features"])
            if ae.output_activation not in ("sigmoid", "identity") or not 0 < n_features < 10**8:
                raise ValueError("bad output_activation or n_features")
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise FormatError(f"{directory / 'config.json'}: invalid model config ({exc})") \
                from exc
        _check_declared_size(ae, n_features, directory / "model.safetensors")
        ae.model = ae._build(n_features)
        load_state_into(ae.model, load_tensors(directory / "model.safetensors"),
                        directory / "model.safetensors")
        ae.model.eval()
        return ae


def _check_declared_size(ae: Autoencoder, n_features: int, weights: Path) -> None:
    """Refuse a config.json whose model would not fit in ``weights`` before allocating it.

    The model is built on the ``meta`` device (no memory) to count its bytes, so a file that
    declares a huge model cannot make :meth:`Autoencoder.load` allocate gigabytes.
    """
    try:
        with torch.device("meta"):
            probe = build_model(ae.config.model, n_features, ae.output_activation, 0.0,
                                ae.sample_shape)
    except Exception as exc:  # noqa: BLE001 -- any failure here means an invalid config
        raise FormatError(f"{weights.parent / 'config.json'}: invalid model config ({exc})") \
            from None
    needed = sum(t.numel() * t.element_size() for t in probe.state_dict().values())
    size = weights.stat().st_size if weights.is_file() else 0
    if needed > size:
        raise FormatError(f"{weights.parent / 'config.json'} declares a model of {needed} bytes "
                          f"of weights but {weights} holds {size} bytes")


def reconstruction_errors(x: torch.Tensor, x_hat: torch.Tensor) -> dict[str, float]:
    """``mse`` over all values and ``sse_per_sample`` of a reconstruction."""
    sq = (x_hat.double() - x.double()).pow(2)
    n = max(1, x.shape[0])
    sse = float(sq.sum())
    return {"mse": sse / max(1, sq.numel()), "sse_per_sample": sse / n}


def load(directory: str | Path) -> Autoencoder:
    """Load a model saved by :meth:`Autoencoder.save` or ``aekit train``."""
    return Autoencoder.load(directory)
