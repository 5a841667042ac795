"""``aekit.Autoencoder``: the Keras-like face of aekit (fit, encode, decode, save, load).

    ae = aekit.Autoencoder(latent_dim=32, hidden=(64, 32))
    history = ae.fit(x, epochs=50, batch_size=32, validation_split=0.1)
    z = ae.encode(x); x_hat = ae.decode(z); ae.save("model_dir")

Arrays in and out are numpy (torch tensors are accepted). Data is scaled as DESIGN.md says
(pixels to [0, 1], tabular standardized with the training split's statistics) and the scaling
is undone on decode, so ``decode`` returns values in the units of the input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from aekit import __version__
from aekit.config import DEVICES, OUTPUT_ACTIVATIONS, RunConfig
from aekit.data import Dataset, Scaler, check_n_features
from aekit.data.labels import attach
from aekit.errors import ConfigError, DataError, FormatError, TrainingError
from aekit.models import build_model
from aekit.models.mlp import MLPAutoencoder
from aekit.pipeline import (PreparedRun, as_dataset, host_values, per_class_sse, per_row_sse,
                            prepare, reconstruction_errors, starts_from_pca)
from aekit.serialization import (load_state_into, load_tensors, read_json, save_tensors,
                                 write_json)
from aekit.pipeline.fit import assemble
from aekit.training.callbacks import Callback
from aekit.training.findings import findings_of
from aekit.training.evaluation import EVAL_BATCH, resolve_device
from aekit.training.trainer import History

MODEL_FORMAT = "aekit-model"
MODEL_FORMAT_VERSION = 1


# Options of ``aekit train`` that only the command's run folder uses: Autoencoder(...) refuses
# them rather than ignore them.
COMMAND_ONLY = ("data", "test", "test_split", "nproc", "resume", "report",
                "checkpoint_every_steps", "labels", "test_labels")


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
        ignored = sorted(set(options) & set(COMMAND_ONLY))
        if ignored:
            raise ConfigError(f"Autoencoder does not use {', '.join(ignored)}: "
                              f"{', '.join(COMMAND_ONLY)} are options of the `aekit train` "
                              "command (its run folder, test set and processes). In Python, "
                              "score a test set with ae.score(x_test) and save with ae.save(dir)")
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
        self.pca_: Any = None  # PCA at the latent size on the training split (after fit)
        self.device = torch.device("cpu")

    # -- training -----------------------------------------------------------------------------
    def fit(self, x: Any, y: Any = None, batch_size: int | None = None,
            epochs: int | None = None, verbose: bool | None = None,
            callbacks: Sequence[Callback] = (), validation_split: float | None = None,
            validation_data: Any = None, shuffle: bool | None = None, *,
            sample_weight: Any = None, labels: Any = None) -> History:
        """Train on ``x`` (samples in rows; image stacks ``(n, h, w[, c])`` are accepted).

        Keras's order and names: ``fit(x_train, x_train, epochs=100, batch_size=32,
        shuffle=True, validation_split=0.1)`` works as written.

        Args:
            x: training inputs: numpy array, torch tensor or :class:`aekit.data.Dataset`.
            y: training targets; None or ``x`` itself: reconstruct ``x``. A different ``y``
                (same shape) trains toward it: ``fit(noisy, clean)`` is a denoising autoencoder.
            batch_size, epochs, shuffle, validation_split: override the configuration.
            verbose: progress bar / per-epoch lines (default: the ``progress`` option).
            callbacks: extra hooks around each step and epoch.
            validation_data: a separate validation set, ``x_val`` or ``(x_val, y_val)``;
                replaces ``validation_split``.
            sample_weight: one weight (>= 0) per row of ``x``: each row's loss is weighted
                by it (Keras's ``sample_weight``).
            labels: one class label per row of ``x`` (integers or strings; default: a
                Dataset's own). The ``balance`` option (``"weights"``, ``"sampler"``) uses
                them; :meth:`evaluate` reports per-class errors and the codes' probe.

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
        self.config = self.config.replace(**changes)
        run = prepare(self.config, x, y, validation_data, labels=labels,
                      sample_weight=sample_weight)
        return self.fit_prepared(run, callbacks)

    def fit_prepared(self, run: PreparedRun, callbacks: Sequence[Callback] = (),
                     initial_state: dict[str, torch.Tensor] | None = None) -> History:
        """Train on a run the pipeline prepared (:func:`aekit.pipeline.prepare`).

        ``aekit train`` and the apps prepare their data once and call this; :meth:`fit` is
        ``prepare`` then this. ``initial_state`` (a ``state_dict`` of a model of the same
        options) starts training from those weights instead of from PCA's solution (a warm
        start, as the outlier detector's refit does).
        """
        self.build_prepared(run)
        if initial_state is not None:
            self.model.load_state_dict(initial_state)
        training = assemble(run, self.model, self.device, callbacks)
        self.config, self.trainer = training.config, training.trainer
        self.history = training.run()
        return self.history

    def build_prepared(self, run: PreparedRun) -> torch.nn.Module:
        """Take the prepared run's decisions (options, scaler, output) and build the model,
        its linear path set to PCA's solution when the model starts from PCA."""
        cfg = self.config = run.config
        self.train_index, self.pca_ = run.train_index, run.pca
        self.sample_shape, self.data_kind = run.data.sample_shape, run.data.kind
        self.scaler, self.output_activation = run.scaler, run.output_activation
        self._apply_threads()
        torch.manual_seed(cfg.train.seed)
        self.device = resolve_device(cfg.train.device)
        self.model = self._build(run.n_features)
        if starts_from_pca(cfg, self.output_activation):
            self.model.init_from_pca(run.pca.components_, run.pca.mean_)
        elif isinstance(self.model, MLPAutoencoder) and self.output_activation != "identity":
            self.model.init_output_bias(run.pca.mean_)  # else 0.5 (sigmoid) or 0 everywhere
        return self.model

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

    def _build(self, n_features: int) -> torch.nn.Module:
        model = build_model(self.config.model, n_features, self.output_activation,
                            self.config.optim.l1_codes or 0.0, self.sample_shape)
        return model.to(self.device)

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

    def _on_device(self, values: Any) -> torch.Tensor:
        """``values`` as a float32 tensor on the model's device (no copy where none is
        needed)."""
        return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).to(self.device)

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
        z = torch.as_tensor(np.asarray(host_values(z, "codes")), dtype=torch.float32)
        if z.ndim != 2 or z.shape[1] != model.cfg.latent_dim:
            raise ConfigError(f"codes must have shape (n, {model.cfg.latent_dim}). "
                              f"Received: shape {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise ConfigError("codes contain NaN or infinite values")
        x_hat = self._batched(model.decode, z.to(self.device))
        return self.scaler.inverse_transform(self._clip(x_hat))

    def reconstruct(self, x: Any) -> np.ndarray:
        """``decode(encode(x))`` in the units of the input."""
        x_hat = self._batched(lambda t: self.model(t).x_hat, self._scaled(x, "input"))
        return self.scaler.inverse_transform(self._clip(x_hat))

    def _clip(self, x_hat: np.ndarray) -> np.ndarray:
        """Clip to the scaled range of data that has one (pixels, min-max scaled features):
        a linear output can overshoot 0 or 1, and values in the data's units should be valid
        pixels. Errors (``score``, the summary) are measured before clipping."""
        bounds = self.scaler.output_range
        return np.clip(x_hat, *bounds, out=x_hat) if bounds is not None else x_hat

    def score(self, x: Any) -> dict[str, float]:
        """Reconstruction error of ``x`` in the scaled space the model works in.

        Returns:
            ``mse`` (mean over all values) and ``sse_per_sample`` (squared error summed over a
            sample's features, averaged over samples).
        """
        t = self._scaled(x, "input")
        return reconstruction_errors(t.cpu().numpy(), self._batched(lambda b: self.model(b).x_hat,
                                                                    t))

    def score_per_class(self, x: Any, labels: Any = None) -> dict[str, float]:
        """Squared error per sample of each class of ``x`` (class name -> error), in the scaled
        space; ``labels`` one per row (default: a Dataset's own).

        Raises:
            DataError: no labels, or not one per row.
        """
        ds = attach(as_dataset(x, "input"), labels)
        if ds.labels is None:
            raise DataError("score_per_class needs labels: pass labels=..., one per row")
        t = self._scaled(ds, "input")
        per_row = per_row_sse(t.cpu().numpy(), self._batched(lambda b: self.model(b).x_hat, t))
        return per_class_sse(per_row, ds.labels, ds)

    def encode_scaled(self, x_scaled: np.ndarray) -> np.ndarray:
        """Codes of rows already in the scaled space the model works in."""
        self._require_fitted()
        t = self._on_device(x_scaled)
        return self._batched(self.model.encode, t)

    def encode_and_reconstruct_scaled(self, x_scaled: np.ndarray
                                      ) -> tuple[np.ndarray, np.ndarray]:
        """Codes (n, latent_dim) and reconstructions (shaped as ``x_scaled``) of rows already in
        the scaled space, from one pass of the model (``encode_scaled`` and
        ``reconstruct_scaled`` together, each row encoded once)."""
        model = self._require_fitted()
        t = self._on_device(x_scaled)
        latent = model.cfg.latent_dim
        if len(t) == 0:
            return np.zeros((0, latent), np.float32), np.zeros(t.shape, np.float32)

        def both(batch: torch.Tensor) -> torch.Tensor:
            out = model(batch)
            return torch.cat([out.z.flatten(1), out.x_hat.flatten(1)], dim=1)

        joined = self._batched(both, t)
        return joined[:, :latent], joined[:, latent:].reshape(t.shape)

    def reconstruct_scaled(self, x_scaled: np.ndarray) -> np.ndarray:
        """Reconstructions of rows already in the scaled space the model works in."""
        t = self._on_device(x_scaled)
        return self._batched(lambda b: self.model(b).x_hat, t)

    def decode_scaled(self, z: Any) -> np.ndarray:
        """Reconstructions of codes in the scaled space the model works in (no clipping, the
        scaling not undone): (n, n_features)."""
        model = self._require_fitted()
        t = self._on_device(z)
        if t.ndim != 2 or t.shape[1] != model.cfg.latent_dim:
            raise ConfigError(f"codes must have shape (n, {model.cfg.latent_dim}). "
                              f"Received: shape {tuple(t.shape)}")
        return self._batched(model.decode, t)

    def explain(self, x: Any, *, samples: int | None = 2000, steps: int = 7,
                percentiles: tuple[float, float] = (5.0, 95.0),
                attribution: str = "correlation", max_axes: int = 8, seed: int = 0,
                pca: bool = True, out: str | Path | None = None) -> Any:
        """Look inside the model on data ``x`` (what ``aekit explain`` shows).

        Latent traversals (each code unit, or the codes' top principal directions when the
        latent size is above ``max_axes``, moved from the low to the high percentile with the
        rest of the code at its median, and decoded), the reconstruction error of each feature
        next to PCA's, and each unit's strongest input features (correlation, and gradient
        attribution beside it). Guide: docs/guide/explain.md.

        Args:
            x: the data: array, tensor, :class:`~aekit.data.Dataset` (a CSV's header names
                the features) or a data spec (``"digits"``, ``"data.csv"``).
            samples: rows used (a random sample drawn with ``seed``); None: all.
            steps, percentiles: the traversal's steps and its low and high percentile.
            attribution: ``"correlation"`` or ``"gradient"``: what ranks each unit's features.
            max_axes: the largest latent size traversed unit by unit.
            pca: compare the per-feature errors with PCA at the same latent size.
            out: a folder to write ``explain.json``, ``traversals.png``,
                ``feature_errors.png``, ``unit_features.png`` and ``traversals.npy`` into.

        Returns:
            An :class:`aekit.explanation.Explanation`: ``.to_dict()`` is ``explain.json``'s
            content; ``.save(dir)`` writes the files.

        Raises:
            ConfigError: bad options or an untrained model. DataError: data with the wrong
                number of features.
        """
        from aekit.explain import explain

        found = explain(self, x, samples=samples, steps=steps, percentiles=percentiles,
                        attribution=attribution, max_axes=max_axes, seed=seed, pca=pca)
        if out is not None:
            found.save(out)
        return found

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
    def load(cls, directory: str | Path, device: str = "cpu") -> "Autoencoder":
        """Rebuild a saved model; malformed or mismatching files raise :class:`FormatError`.

        ``device``: where the model lives, ``cpu`` (the default), ``cuda`` or ``auto`` (CUDA
        when PyTorch sees it); inputs are moved there.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise FormatError(f"{directory}: no such model folder (expected a folder with "
                              "config.json and model.safetensors, as `aekit train --out` writes)")
        meta = read_json(directory / "config.json", "model config")
        if meta.get("format") != MODEL_FORMAT:
            raise FormatError(f"{directory / 'config.json'}: not an aekit model config "
                              f"(format={meta.get('format')!r})")
        try:
            saved = meta["config"]
            if isinstance(saved, dict) and isinstance(saved.get("model"), dict):
                # models saved before the PCA path existed have no linear path
                saved = {**saved, "model": {"pca_init": False, **saved["model"]}}
            config = RunConfig.from_dict(saved)
            ae = cls(config=config)
            ae.scaler = Scaler.from_dict(meta["scaler"])
            ae.sample_shape = tuple(int(v) for v in meta["sample_shape"])
            ae.data_kind = str(meta["data_kind"])
            ae.output_activation = str(meta["output_activation"])
            n_features = int(meta["n_features"])
            resolved = [a for a in OUTPUT_ACTIVATIONS if a != "auto"]
            if ae.output_activation not in resolved or not 0 < n_features < 10**8:
                raise ValueError("bad output_activation or n_features")
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise FormatError(f"{directory / 'config.json'}: invalid model config ({exc})") \
                from exc
        _check_declared_size(ae, n_features, directory / "model.safetensors")
        if device not in DEVICES:
            raise ConfigError(f"`device` must be one of {', '.join(DEVICES)}. Received: "
                              f"device={device!r}")
        ae.device = resolve_device(device)
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


def load(directory: str | Path, device: str = "cpu") -> Autoencoder:
    """Load a model saved by :meth:`Autoencoder.save` or ``aekit train`` (on ``device``:
    ``cpu``, ``cuda`` or ``auto``)."""
    return Autoencoder.load(directory, device)
