"""Findings: what went wrong in a run, with the evidence and the strategy that addresses it.

Each detector is a pure function of the run's records as ``metrics.jsonl`` holds them (epoch
logs, ``diagnostics`` samples from :mod:`aekit.training.diagnostics`, events) and returns a
:class:`Finding` or None. :func:`find_all` runs them all and sorts the findings most important
first. The thresholds are module constants, named, so that the rules can be read and tuned.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

from aekit.serialization import is_number

SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
VANISHING_RATIO = 1e-2  # a layer's ||g||/||W|| below 1/100 of the strongest layer's
VANISHING_CRITICAL_RATIO = 1e-4
EXPLODING_GRAD_NORM = 1e3
EXPLODING_UPDATE_RATIO = 0.1  # one step moving a weight matrix by 10% of its norm
DEAD_SHARE = 0.5
SATURATED_SHARE = 0.3
PLATEAU_REL_IMPROVEMENT = 0.002  # 0.2% over the last epochs...
PLATEAU_LR_FRACTION = 0.1  # ...while the lr is still at least 10% of its peak
DIVERGENCE_FACTOR = 1.5  # final train loss 1.5x the best one
OSCILLATION_SIGN_CHANGES = 0.7
OSCILLATION_AMPLITUDE = 0.02
OVERFIT_VAL_RISE = 0.05
PCA_TOLERANCE = 0.01  # the saved model's validation loss more than 1% above PCA's
AT_PCA_TOLERANCE = 0.02  # a saved model within 2% of PCA's validation loss ended "at PCA"...
STILL_FALLING = 0.01  # ...while the train loss fell 1% or more over the last epochs
FALLING_EPOCHS = 3
EARLY_STOP_LR_SHARE = 0.5  # early stopping while the lr was still at least half its peak


@dataclass
class Finding:
    """One diagnosis: what (``kind``), how bad, when, the numbers behind it, and what to do."""

    kind: str
    severity: str
    step: int | None
    message: str
    advice: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (for ``summary.json``)."""
        return asdict(self)


def split_records(records: Iterable[dict[str, Any]]) -> tuple[list, list, list]:
    """Split ``metrics.jsonl`` records into (epochs, diagnostics, events) by their ``type``."""
    epochs, diags, events = [], [], []
    for r in records:
        kind = r.get("type", "epoch")
        (epochs if kind == "epoch" else diags if kind == "diagnostics" else
         events if kind == "event" else []).append(r)
    return epochs, diags, events


def _finite(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _late(diags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last quarter of the diagnostics samples (at least one)."""
    return diags[-max(1, len(diags) // 4):]


def layer_gradients(diags: list[dict[str, Any]]) -> tuple[dict[str, float], str]:
    """How strongly each layer is pushed: its median gradient over the last quarter of samples.

    The measure is the gradient norm relative to the weight norm, ``||g|| / ||W||``: the relative
    change a gradient step makes to the layer. Unlike the gradient's size per weight it does not
    depend on the layer's width or on how many of its inputs are zero, and with batch
    normalization (whose layers do not care about the scale of their weights, and whose
    gradients shrink as the weights grow) it still compares like with like. Samples without
    weight norms fall back to the gradient RMS per weight.

    Residual projections (``*.skip``) are left out: a shortcut receives the block's output
    gradient directly, so its size says nothing about how the gradient fades through the depth.
    So are the layers a sample lists as ``side_layers`` (the linear PCA path of a ``pca_init``
    MLP and the hidden path's output layers that start at zero beside it; see
    :func:`aekit.training.diagnostics.side_layers`).

    Returns:
        ``({layer: size}, measure)`` in the order of the samples (input first); ``measure`` is
        ``"grad_norm/weight_norm"`` or ``"grad_rms"``.
    """
    late = [d for d in _late(diags) if d.get("layers")]
    if not late:
        return {}, "grad_rms"
    side = set(late[-1].get("side_layers") or ())
    entries = {n: e for n, e in late[-1]["layers"].items()
               if "grad_rms" in e and not n.endswith(".skip") and n not in side}
    relative = all("grad_norm" in e and "weight_norm" in e for e in entries.values())

    def size(e: dict[str, Any]) -> Any:
        if not relative:
            return e.get("grad_rms")
        g, w = e.get("grad_norm"), e.get("weight_norm")
        return g / w if isinstance(g, (int, float)) and isinstance(w, (int, float)) and w > 0 \
            else None

    sizes = {n: statistics.median(_finite(size(d["layers"].get(n, {})) for d in late)
                                  or [math.nan]) for n in entries}
    return sizes, "grad_norm/weight_norm" if relative else "grad_rms"


PCA_START_GRACE_STEPS = 200


def detect_vanishing(epochs: list, diags: list, events: list) -> Finding | None:
    """Gradients shrinking toward the input: layers below ``VANISHING_RATIO`` of the strongest.

    A model started from PCA (samples with ``side_layers``) grows its hidden path from zero:
    until ``PCA_START_GRACE_STEPS`` steps every hidden layer's gradient is small by
    construction, so such early samples are not judged."""
    late = _late(diags)
    if late and late[-1].get("side_layers") and late[-1]["step"] < PCA_START_GRACE_STEPS:
        return None
    sizes, measure = layer_gradients(diags)
    names = list(sizes)
    if len(names) < 3:
        return None
    finite = [v for v in sizes.values() if math.isfinite(v)]
    top = max(finite) if finite else 0.0
    if top <= 0:
        return None
    weak = [n for n in names if sizes[n] < VANISHING_RATIO * top]
    first_half = names[: max(1, len(names) // 2)]
    if not weak or weak[0] not in first_half:  # must start at the input side
        return None
    strongest = max(names, key=lambda n: sizes[n])
    ratio = sizes[weak[0]] / top
    sev = "critical" if ratio < VANISHING_CRITICAL_RATIO else "high"
    what = ("gradient relative to the weights, ||g||/||W||" if measure != "grad_rms"
            else "gradient RMS per weight")
    return Finding(
        "vanishing_gradients", sev, _late(diags)[-1]["step"],
        f"vanishing gradients: the gradient at {weak[0]} is {ratio:.1e} of the one at "
        f"{strongest} ({what}); weak layers: {', '.join(weak)}",
        "the early layers barely learn. With sigmoid/tanh units the derivatives multiply "
        "toward zero layer by layer: use residual connections with batch normalization "
        "(--residual --batch-norm), or a ReLU-family activation (--activation elu), and an "
        "adaptive optimizer (--optimizer adam) whose per-weight steps do not shrink with the "
        "gradient",
        {"ratio": ratio, "weak_layers": weak, "strongest_layer": strongest,
         "measure": measure, "gradient": sizes})


def _grown_from_zero(d: dict[str, Any]) -> set[str]:
    """Layers of a sample that started at zero (``side_layers`` other than the linear PCA path
    ``linear_*``: the hidden path's output layers of a ``pca_init`` MLP). A step's size
    relative to such a layer's still tiny weights says nothing about the step size."""
    return {n for n in d.get("side_layers") or () if not str(n).startswith("linear_")}


def detect_exploding(epochs: list, diags: list, events: list) -> Finding | None:
    """Huge gradient norms or steps that move a weight matrix by a large share of its norm
    (layers that started at zero left out of the latter: see :func:`_grown_from_zero`)."""
    worst_norm, worst_ratio, at_step, at_layer = 0.0, 0.0, None, None
    for d in diags:
        norm = d.get("grad_norm")
        if isinstance(norm, (int, float)) and math.isfinite(norm) and norm > worst_norm:
            worst_norm = norm
            if norm > EXPLODING_GRAD_NORM:
                at_step = d["step"]
        from_zero = _grown_from_zero(d)
        for name, e in d.get("layers", {}).items():
            if name in from_zero:
                continue
            ratio = e.get("update_ratio")
            if isinstance(ratio, (int, float)) and math.isfinite(ratio) and ratio > worst_ratio:
                worst_ratio = ratio
                if ratio > EXPLODING_UPDATE_RATIO:
                    at_step, at_layer = d["step"], name
    if worst_norm <= EXPLODING_GRAD_NORM and worst_ratio <= EXPLODING_UPDATE_RATIO:
        return None
    if worst_norm > EXPLODING_GRAD_NORM:
        what = f"exploding gradients: global gradient norm up to {worst_norm:.3g}"
    else:
        what = (f"steps too large: one step changed {at_layer} by {worst_ratio:.1%} of its "
                f"weights (gradient norm up to {worst_norm:.3g})")
    return Finding(
        "exploding_gradients", "high", at_step, what,
        "steps are too large for the loss surface: clip the gradients (--clip-norm 1.0), lower "
        "the learning rate (aekit lr-find), or add batch normalization (--batch-norm)",
        {"max_grad_norm": worst_norm, "max_update_ratio": worst_ratio, "layer": at_layer})


def _worst_activation(diags: list, key: str) -> tuple[str | None, float, int | None]:
    worst_name, worst, step = None, 0.0, None
    for d in _late(diags):
        for name, e in d.get("layers", {}).items():
            value = e.get(key)
            if isinstance(value, (int, float)) and value > worst:
                worst_name, worst, step = name, float(value), d["step"]
    return worst_name, worst, step


def detect_dead_units(epochs: list, diags: list, events: list) -> Finding | None:
    """ReLU-family units never active on the probe batch in a large share of a layer."""
    name, share, step = _worst_activation(diags, "dead")
    if share < DEAD_SHARE:
        return None
    return Finding(
        "dead_units", "high" if share > 0.8 else "medium", step,
        f"dead units: {share:.0%} of the units of {name} output zero for every probe sample",
        "these units no longer learn (their gradient is zero): lower the learning rate, use "
        "--activation leaky_relu or elu, or add batch normalization (--batch-norm)",
        {"layer": name, "dead_share": share})


def detect_saturated_units(epochs: list, diags: list, events: list) -> Finding | None:
    """Sigmoid/tanh units stuck near their bounds in a large share of a layer."""
    name, share, step = _worst_activation(diags, "saturated")
    if share < SATURATED_SHARE:
        return None
    return Finding(
        "saturated_units", "high" if share > 0.6 else "medium", step,
        f"saturated units: {share:.0%} of the units of {name} sit at their bounds",
        "a saturated sigmoid/tanh passes almost no gradient: add batch normalization "
        "(--batch-norm) to keep pre-activations centred, lower the learning rate, or use a "
        "ReLU-family activation",
        {"layer": name, "saturated_share": share})


def detect_plateau(epochs: list, diags: list, events: list) -> Finding | None:
    """Train loss flat over the last epochs while the lr is still high (not an annealed end)."""
    losses = [e.get("train_loss") for e in epochs]
    n = len(losses)
    window = max(3, n // 4)
    if n < window + 1 or any(not isinstance(v, (int, float)) for v in losses[-window - 1:]):
        return None
    before, last = losses[-window - 1], losses[-1]
    improvement = (before - last) / max(abs(before), 1e-12)
    lrs = _finite(e.get("lr") for e in epochs)
    lr_share = min(lrs[-window:]) / max(lrs) if lrs and max(lrs) > 0 else 0.0
    if improvement >= PLATEAU_REL_IMPROVEMENT or lr_share < PLATEAU_LR_FRACTION:
        return None
    if improvement < -PLATEAU_REL_IMPROVEMENT:  # not flat: rising (divergence is >= 1.5x)
        return Finding(
            "rising_loss", "medium", epochs[-1].get("step"),
            f"rising loss: the train loss rose by {-improvement:.2%} over the last {window} "
            f"epochs at {lr_share:.0%} of the peak learning rate",
            "the learning rate is too high for this stage: lower --lr (aekit lr-find), decay "
            "it sooner (--schedule cosine or exponential), or clip gradients (--clip-norm 1.0); "
            "the best weights were kept if a validation split chose them",
            {"relative_improvement": improvement, "epochs": window, "lr_fraction": lr_share})
    return Finding(
        "plateau", "medium", epochs[-1].get("step"),
        f"plateau: the train loss improved by {improvement:.2%} over the last {window} epochs "
        f"at {lr_share:.0%} of the peak learning rate",
        "the run is stuck, not converged: decay the learning rate (--schedule exponential or "
        "cosine), restart it (--schedule cosine_restarts, or --auto-fix for a warm restart), "
        "or use momentum/Adam to move along flat valleys",
        {"relative_improvement": improvement, "epochs": window, "lr_fraction": lr_share})


def detect_divergence(epochs: list, diags: list, events: list) -> Finding | None:
    """The train loss ends well above its best value, or the doctor rolled back a divergence."""
    rollbacks = [e for e in events if e.get("kind") == "rollback"
                 and e.get("reason") == "divergence"]
    losses = _finite(e.get("train_loss") for e in epochs)
    if len(losses) >= 2 and losses[-1] > DIVERGENCE_FACTOR * min(losses[:-1]):
        factor = losses[-1] / min(losses[:-1])
        return Finding(
            "divergence", "critical", epochs[-1].get("step"),
            f"divergence: the final train loss {losses[-1]:.4g} is {factor:.1f}x the best "
            f"({min(losses):.4g})",
            "the learning rate is too high for this stage of training: lower --lr (aekit "
            "lr-find), decay it (--schedule exponential), clip gradients (--clip-norm 1.0), or "
            "leave the doctor's rollbacks on (the default; --max-rollbacks for more) to cut "
            "it",
            {"final_loss": losses[-1], "best_loss": min(losses), "factor": factor})
    if rollbacks:
        return Finding(
            "divergence", "medium", rollbacks[0].get("step"),
            f"divergence: the doctor rolled back {len(rollbacks)} time(s) after the loss rose",
            "the run was saved by rollbacks; start with a lower --lr next time",
            {"rollbacks": len(rollbacks)})
    return None


def detect_oscillation(epochs: list, diags: list, events: list) -> Finding | None:
    """Epoch-to-epoch train loss going up and down, by more than a small amplitude."""
    losses = _finite(e.get("train_loss") for e in epochs)[-10:]
    if len(losses) < 6:
        return None
    diffs = [b - a for a, b in zip(losses[:-1], losses[1:])]
    changes = sum(1 for a, b in zip(diffs[:-1], diffs[1:]) if a * b < 0) / (len(diffs) - 1)
    amplitude = statistics.median(abs(d) for d in diffs) / max(statistics.median(losses), 1e-12)
    if changes < OSCILLATION_SIGN_CHANGES or amplitude < OSCILLATION_AMPLITUDE:
        return None
    return Finding(
        "oscillation", "medium", epochs[-1].get("step"),
        f"oscillation: the train loss changed direction in {changes:.0%} of the last "
        f"epochs, by {amplitude:.1%} each time",
        "the steps overshoot: lower or decay the learning rate (--schedule exponential), "
        "use a larger --batch-size, or momentum to damp the zigzag",
        {"sign_change_share": changes, "relative_amplitude": amplitude})


def detect_non_finite(epochs: list, diags: list, events: list) -> Finding | None:
    """Steps skipped for a NaN/Inf loss or gradient, and the rollbacks that followed."""
    skipped = max([int(e.get("skipped_steps") or 0) for e in epochs] or [0])
    rollbacks = [e for e in events if e.get("kind") == "rollback"
                 and e.get("reason") == "non_finite"]
    if not skipped and not rollbacks:
        return None
    first = rollbacks[0].get("step") if rollbacks else None
    return Finding(
        "non_finite", "critical" if not rollbacks else "high", first,
        f"non-finite values: {skipped} step(s) had a NaN/Inf loss or gradient"
        + (f"; {len(rollbacks)} rollback(s) with a lower learning rate" if rollbacks else ""),
        "lower the learning rate, clip gradients (--clip-norm 1.0), check the data for extreme "
        "values and its scaling (--scaling)",
        {"skipped_steps": skipped, "rollbacks": len(rollbacks)})


def saved_val_loss(epochs: list, events: list) -> tuple[float | None, int | None]:
    """The validation loss of the weights a run ended with, and the epoch they are from.

    When the best weights were put back (a ``best_weights`` or ``early_stop`` event) that is
    the best epoch's (epoch 0: the starting weights, scored before training), else the last
    epoch's. ``(None, None)`` without a validation loss.
    """
    restored = [e for e in events if e.get("kind") in ("best_weights", "early_stop")]
    if restored:
        event = restored[-1]
        best_epoch = event.get("best_epoch")
        value = event.get("best_val_loss")
        if not is_number(value):  # records written before the event carried the loss
            if best_epoch == 0:
                value = epochs[0].get("initial_val_loss") if epochs else None
            else:
                value = next((e.get("val_loss") for e in epochs
                              if e.get("epoch") == best_epoch), None)
        if is_number(value):
            return float(value), best_epoch if is_number(best_epoch) else None
    if epochs and is_number(epochs[-1].get("val_loss")):
        return float(epochs[-1]["val_loss"]), epochs[-1].get("epoch")
    return None, None


def detect_worse_than_pca(epochs: list, diags: list, events: list) -> Finding | None:
    """The saved model reconstructs the validation data worse than PCA at the same code size.

    Needs the run pipeline's ``pca_baseline`` event (PCA's validation MSE, mean over all
    values, the units of ``val_loss``); fires when the saved model's validation loss (see
    :func:`saved_val_loss`) is above it by more than ``PCA_TOLERANCE``.
    """
    baselines = [e for e in events if e.get("kind") == "pca_baseline"
                 and is_number(e.get("val_mse")) and math.isfinite(e["val_mse"])]
    if not baselines:
        return None
    pca = float(baselines[-1]["val_mse"])
    k = baselines[-1].get("latent_dim")
    loss, epoch = saved_val_loss(epochs, events)
    if loss is None or pca < 0 or (math.isfinite(loss) and loss <= pca * (1 + PCA_TOLERANCE)):
        return None
    ratio = loss / pca if pca > 0 else math.inf
    restored = any(e.get("kind") in ("best_weights", "early_stop") for e in events)
    which = ("the starting weights, put back" if restored and epoch == 0 else
             f"epoch {epoch}, the best, kept" if restored else f"epoch {epoch}, the last")
    size = f"PCA-{k}" if k is not None else "PCA"
    return Finding(
        "worse_than_pca", "high", epochs[-1].get("step") if epochs else None,
        f"worse than PCA: the saved model's validation loss {loss:.4g} ({which}) is "
        f"{ratio:.3g}x {size}'s {pca:.4g} (same code size)",
        "a linear projection of the same size reconstructs the validation data better. Keep "
        "--pca-init on (training starts from PCA's solution and, with the best weights kept, "
        "cannot end worse on the validation data), lower --lr or let the range test pick it "
        "(--lr auto), train fewer --epochs or stop early (--early-stopping-patience auto, "
        "--restore-best-weights). A smaller --latent-dim is not the fix: PCA at that size is "
        "better still. If nothing beats PCA the data may be close to linear and PCA the right "
        "model",
        {"val_loss": loss, "pca_val_mse": pca, "ratio": ratio, "latent_dim": k,
         "epoch": epoch, "best_weights_kept": restored, "tolerance": PCA_TOLERANCE})


def detect_ended_at_pca(epochs: list, diags: list, events: list) -> Finding | None:
    """The run ended at PCA's solution, or within noise of it, while the training loss was
    still falling: training stopped before the model could leave PCA, not because it could
    not.

    "At PCA": the ``pca_check`` event kept PCA's solution, or the saved model's validation
    loss is within ``AT_PCA_TOLERANCE`` of PCA's (``pca_baseline``). "Still falling": the
    train loss of the last epoch is at least ``STILL_FALLING`` below that of
    ``FALLING_EPOCHS`` epochs earlier, and the best validation loss is one of the last
    ``FALLING_EPOCHS`` epochs' (a model that only fits its training rows better, its
    validation loss long past its best, overfits: more epochs would not help).
    """
    checks = [e for e in events if e.get("kind") == "pca_check"]
    baselines = [e for e in events if e.get("kind") == "pca_baseline"
                 and is_number(e.get("val_mse")) and e["val_mse"] > 0]
    kept_pca = bool(checks) and checks[-1].get("kept_model") is False
    loss, _ = saved_val_loss(epochs, events)
    near = (bool(baselines) and loss is not None and math.isfinite(loss)
            and abs(loss / baselines[-1]["val_mse"] - 1) <= AT_PCA_TOLERANCE)
    train = _finite(e.get("train_loss") for e in epochs)
    vals = [e.get("val_loss") for e in epochs]
    if not (kept_pca or near) or len(train) <= FALLING_EPOCHS or not all(map(is_number, vals)):
        return None
    if min(range(len(vals)), key=vals.__getitem__) < len(vals) - FALLING_EPOCHS:
        return None  # the validation loss stopped improving: overfitting, not too short
    fall = 1 - train[-1] / train[-1 - FALLING_EPOCHS] if train[-1 - FALLING_EPOCHS] > 0 else 0
    if fall < STILL_FALLING:
        return None
    where = ("the check put PCA's solution back" if kept_pca else
             f"its validation loss {loss:.4g} is within {AT_PCA_TOLERANCE:.0%} of PCA's")
    return Finding(
        "ended_at_pca", "medium", epochs[-1].get("step"),
        f"ended at PCA's solution: {where}, while the train loss was still falling "
        f"({fall:.1%} over the last {FALLING_EPOCHS} epochs)",
        "the run stopped before the model could move away from PCA's solution. Train longer "
        "(--epochs, or --time-budget), give early stopping more patience "
        "(--early-stopping-patience 20), hold more validation rows so that a gain can be "
        "shown (--validation-split 0.2), or start from a random initialisation "
        "(--no-pca-init), which on images often ends well below PCA",
        {"kept_pca": kept_pca, "saved_val_loss": loss,
         "pca_val_mse": baselines[-1]["val_mse"] if baselines else None,
         "train_loss_fall": fall, "epochs": len(epochs)})


def detect_early_stop_at_peak_lr(epochs: list, diags: list, events: list) -> Finding | None:
    """Early stopping fired while the learning rate was still high (at least
    ``EARLY_STOP_LR_SHARE`` of the run's peak): the decaying part of the schedule, where the
    loss usually falls most, never ran."""
    stops = [e for e in events if e.get("kind") == "early_stop"]
    lrs = _finite(e.get("lr") for e in epochs)
    if not stops or not lrs or max(lrs) <= 0:
        return None
    share = lrs[-1] / max(lrs)
    if share < EARLY_STOP_LR_SHARE:
        return None
    return Finding(
        "early_stop_at_peak_lr", "medium", epochs[-1].get("step"),
        f"early stopping fired at epoch {len(epochs)} with the learning rate still at "
        f"{share:.0%} of its peak: the schedule's decay, where the loss usually falls most, "
        "never ran",
        "give early stopping more patience (--early-stopping-patience 20) or turn it off "
        "(--early-stopping-patience none, the best weights are still kept), or shorten the "
        "run so that the decay comes sooner (fewer --epochs, --schedule cosine)",
        {"stopped_epoch": len(epochs), "lr": lrs[-1], "peak_lr": max(lrs),
         "lr_share_of_peak": share, "best_epoch": stops[-1].get("best_epoch")})


def detect_overfitting(epochs: list, diags: list, events: list) -> Finding | None:
    """Validation loss rising from its best while the training loss keeps falling; the
    message states the final train/validation gap (ratio and difference)."""
    pairs = [(e.get("train_loss"), e.get("val_loss")) for e in epochs]
    pairs = [(t, v) for t, v in pairs if isinstance(t, (int, float)) and isinstance(v, (int, float))]
    if len(pairs) < 4:
        return None
    vals = [v for _, v in pairs]
    best = min(range(len(vals)), key=vals.__getitem__)
    rise = (vals[-1] - vals[best]) / max(abs(vals[best]), 1e-12)
    train_fell = pairs[-1][0] < pairs[best][0]
    if best == len(vals) - 1 or rise < OVERFIT_VAL_RISE or not train_fell:
        return None
    final_train, final_val = pairs[-1]
    gap = final_val - final_train
    gap_ratio = final_val / final_train if final_train > 0 else math.inf
    message = (f"overfitting: validation loss rose {rise:.1%} since epoch {best + 1} while the "
               f"train loss kept falling; at the end validation {final_val:.4g} vs train "
               f"{final_train:.4g} ({gap_ratio:.2f}x, gap {gap:.3g})")
    advice = ("the model memorises the training set: add L2 (--l2 1e-4) or weight decay, "
              "dropout (--dropout 0.1), stop early (--early-stopping-patience 5), or use more "
              "data")
    restored = [e for e in events if e.get("kind") in ("best_weights", "early_stop")]
    if restored:  # the saved model is the best epoch's: the later epochs were only wasted
        message += ("; the starting weights, which no epoch beat, were kept"
                    if restored[-1].get("best_epoch") == 0
                    else "; the weights of the best epoch were kept")
        advice = ("the saved model is not harmed, but the epochs after the best one were "
                  "wasted: stop early (--early-stopping-patience 5) or fewer --epochs; to "
                  "generalise better add L2 (--l2 1e-4), dropout (--dropout 0.1) or more data")
    return Finding(
        "overfitting", "low" if restored else "medium", epochs[-1].get("step"), message, advice,
        {"best_epoch": best + 1, "val_rise": rise, "best_val_loss": vals[best],
         "final_val_loss": vals[-1], "final_train_loss": final_train, "train_val_gap": gap,
         "val_train_ratio": gap_ratio, "best_weights_kept": bool(restored)})


DETECTORS: tuple[Callable[[list, list, list], Finding | None], ...] = (
    detect_non_finite, detect_divergence, detect_exploding, detect_vanishing,
    detect_saturated_units, detect_dead_units, detect_plateau, detect_oscillation,
    detect_overfitting, detect_worse_than_pca, detect_ended_at_pca,
    detect_early_stop_at_peak_lr)


def find_all(records: Iterable[dict[str, Any]]) -> list[Finding]:
    """Every detector on a run's records, most important first (severity, then step).

    Args:
        records: ``metrics.jsonl`` objects (``type`` epoch, diagnostics or event).

    Returns:
        The findings; an empty list for a healthy run.
    """
    epochs, diags, events = split_records(records)
    found = [f for f in (d(epochs, diags, events) for d in DETECTORS) if f is not None]
    return sorted(found, key=lambda f: (SEVERITY_RANK[f.severity], f.step or 0))


POST_RUN_KINDS = ("class_error_gap",)  # found on the test set after training, in summary.json


def post_run_findings(summary: dict[str, Any]) -> list[Finding]:
    """The findings made after training, on the test set (one class far worse than the
    others), which ``summary.json`` holds but the training records cannot show."""
    keep = ("kind", "severity", "step", "message", "advice", "evidence")
    return [Finding(**{k: f.get(k) for k in keep}) for f in summary.get("findings") or []
            if isinstance(f, dict) and f.get("kind") in POST_RUN_KINDS]


def finding_headline(finding: Finding | dict[str, Any]) -> str:
    """``[SEVERITY] message``: one line that says what was found."""
    f = finding.to_dict() if isinstance(finding, Finding) else finding
    return f"[{f['severity'].upper()}] {f['message']}"


def format_finding(finding: Finding | dict[str, Any]) -> str:
    """Three lines: severity and message, the evidence step, and the advice."""
    f = finding.to_dict() if isinstance(finding, Finding) else finding
    where = f" (step {f['step']})" if f.get("step") is not None else ""
    return f"{finding_headline(f)}{where}\n  advice: {f['advice']}"


def records_of(trainer: Any) -> list[dict[str, Any]]:
    """A finished trainer's epochs, diagnostics samples and events as ``metrics.jsonl`` has them."""
    from aekit.training.diagnostics import Diagnostics

    records = [{"type": "epoch", **e} for e in trainer.history.epochs]
    for cb in trainer.callbacks:
        if isinstance(cb, Diagnostics):
            records += cb.records
    return records + [{"type": "event", **e} for e in trainer.history.events]


def findings_of(trainer: Any) -> list[dict[str, Any]]:
    """:func:`find_all` on a finished trainer, as plain dictionaries (for ``summary.json``)."""
    return [f.to_dict() for f in find_all(records_of(trainer))]
