"""``aekit report RUN_DIR``: one self-contained ``report.html`` that shows a training run.

Everything is inline (SVG charts and base64 PNG images drawn with matplotlib's Agg backend, a
few lines of CSS and JavaScript), so the file opens anywhere without a network. Sections:

1. the headline numbers (test error next to PCA at the same latent size);
2. loss and validation curves, and the learning rate, with the run's events marked;
3. per-layer gradient norms and activation statistics over time (``diag`` records of
   ``metrics.jsonl``, when the run logged them);
4. the doctor's findings (``summary.json`` ``findings``, when present);
5. originals beside reconstructions (image data);
6. a 2-D map of the codes (PCA of the codes), coloured by label when labels exist;
7. inside the model: traversals, per-feature errors and each unit's strongest input features,
   when the folder holds the output of ``aekit explain`` (``explain.json`` and its PNGs);
8. the configuration.

A section whose inputs are missing says so instead of failing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from aekit.errors import AekitError, FormatError
from aekit.report_html import escape as _esc
from aekit.report_html import format_value as _fmt
from aekit.report_html import html_page, html_table
from aekit.report_html import note as _note
from aekit.report_html import plot_block as _plot
from aekit.report_html import png_file as _png_file
from aekit.report_plots import (plot_code_map, plot_curves, plot_pca_bars, plot_reconstructions,
                                 plot_series)
from aekit.serialization import atomic_write_bytes, read_json, weights_hash
from aekit.training.callbacks import read_metrics

MAX_CODE_POINTS = 2000
N_RECONSTRUCTIONS = 10
META_KEYS = ("type", "step", "epoch", "time", "seconds")

# -- reading the run folder ------------------------------------------------------------------
def flatten_numbers(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a (possibly nested) record as ``{"a/b": value}``, metadata left out."""
    out: dict[str, float] = {}
    for key, value in record.items():
        if not prefix and key in META_KEYS:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_numbers(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


DIAG_TYPES = ("diagnostics", "diag")
DIAG_PANELS = {  # leaf metric -> (title, log scale); others follow in alphabetical order
    "grad_norm": ("gradient L2 norm per layer (global: all weights)", True),
    "grad_rms": ("gradient RMS per layer", True),
    "update_ratio": ("update ratio ||dw|| / ||w|| per layer", True),
    "weight_norm": ("weight L2 norm per layer", False),
    "act_mean": ("activation mean per layer (probe batch)", False),
    "act_std": ("activation standard deviation per layer (probe batch)", False),
    "dead": ("share of dead ReLU units per layer", False),
    "saturated": ("share of saturated sigmoid/tanh units per layer", False),
}
DIAG_SKIP = ("loss", "lr")  # already on the training curves


def diag_series(records: list[dict[str, Any]]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """Group the numbers of diagnostics records (``type`` "diagnostics" or "diag") by metric.

    A nested record ``{"layers": {"encoder.0": {"grad_norm": 0.3}}, "grad_norm": 1.2}`` gives
    the panel ``grad_norm`` with the series ``encoder.0`` and ``global``; a top-level
    ``grad_norm_clipped`` joins the ``grad_norm`` panel as ``global (clipped)``.

    Returns:
        ``{metric: {series name: [(step, value), ...]}}``; empty when there are no records.
    """
    panels: dict[str, dict[str, list[tuple[float, float]]]] = {}
    diags = [r for r in records if r.get("type") in DIAG_TYPES]
    for index, record in enumerate(diags):
        x = float(record.get("step", index))
        for name, value in flatten_numbers(record).items():
            parts = name.split("/")
            metric, owner = parts[-1], "/".join(p for p in parts[:-1] if p != "layers")
            if not owner:
                if metric in DIAG_SKIP:
                    continue
                if metric == "grad_norm_clipped":
                    metric, owner = "grad_norm", "global (clipped)"
                else:
                    owner = "global"
            if math.isfinite(value):
                panels.setdefault(metric, {}).setdefault(owner, []).append((x, value))
    return panels


def section_headline(summary: dict[str, Any]) -> str:
    """The numbers a user asks first: error next to PCA, time, speed."""
    keys = ("data", "test", "n_train", "n_val", "n_test", "n_features", "latent_dim", "epochs",
            "steps", "skipped_steps", "train_seconds", "samples_per_second", "val_mse",
            "test_mse", "pca_test_mse", "test_sse_per_sample", "pca_test_sse_per_sample")
    parts = [html_table([(k, summary[k]) for k in keys if k in summary])]
    if "ratio_to_pca" in summary:
        ratio = summary["ratio_to_pca"]
        verdict = ("better than" if ratio < 1 else "worse than") + " PCA"
        css = "good" if ratio < 1 else "bad"
        parts.insert(0, f'<p class="{css}"><b>Test error is {ratio:.2f}x PCA\'s at the same '
                        f'latent size ({verdict}).</b></p>')
        parts.append(_plot(plot_pca_bars(summary)))
    else:
        parts.append(_note("No test set was scored, so there is no comparison with PCA."))
    return "<h2>Result and comparison with PCA</h2>" + "".join(parts)


def section_classes(summary: dict[str, Any]) -> str:
    """Per-class test errors next to PCA's, and the codes' probe, when the run had labels."""
    errors = summary.get("per_class_test_sse")
    if not errors:
        return ""
    pca = summary.get("pca_per_class_test_sse", {})
    train_rows = summary.get("per_class_train_rows", {})
    test_rows = summary.get("per_class_test_rows", {})
    rows = [(k, train_rows.get(k, "-"), test_rows.get(k, "-"), errors[k], pca.get(k, "-"),
             f"{errors[k] / pca[k]:.2f}x" if pca.get(k) else "-")
            for k in sorted(errors, key=errors.get, reverse=True)]
    out = ["<h2>Classes</h2>", f"<p>Balancing: <b>{_esc(summary.get('balance', 'none'))}</b>. "
           "Test error per sample of each class, worst first.</p>",
           html_table(rows, ("class", "training rows", "test rows", "aekit", "PCA", "ratio"))]
    if summary.get("test_only_classes"):
        out.append(_note("Classes only in the test set (never seen in training): "
                         + ", ".join(map(str, summary["test_only_classes"]))))
    p = summary.get("probe")
    if p:
        out.append(f"<h3>The codes for classification and clustering ({p['latent_dim']} "
                   "dimensions)</h3>")
        out.append(html_table(
            [("linear probe accuracy (logistic regression, test set)",
              p.get("linear_probe_accuracy", "-"), p.get("pca_linear_probe_accuracy", "-")),
             ("k-means adjusted Rand index (test codes)", p.get("kmeans_ari", "-"),
              p.get("pca_kmeans_ari", "-"))], ("", "aekit codes", "PCA codes")))
    return "".join(out)


def section_training(records: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    """Loss, validation loss and learning rate per epoch, plus the list of events."""
    epochs = [r for r in records if r.get("type", "epoch") == "epoch" and "train_loss" in r]
    events = [r for r in records if r.get("type") == "event"] or list(summary.get("events", []))
    out = ["<h2>Training curves</h2>"]
    if not epochs:
        return out[0] + _note("metrics.jsonl holds no epoch records.")
    out.append(_plot(plot_curves(epochs, events)))
    if events:
        out.append("<h3>Events</h3>" + html_table(
            [(f"epoch {e.get('epoch', 0) + 1}, step {e.get('step', '?')}: {e.get('kind', '')}",
              e.get("message", "")) for e in events]))
    return "".join(out)


def section_diagnostics(records: list[dict[str, Any]]) -> str:
    """Per-layer gradient norms and activation statistics from ``diag`` records."""
    panels = diag_series(records)
    out = ["<h2>Gradients and activations</h2>"]
    if not panels:
        out.append(_note("No diagnostics records in metrics.jsonl: this run did not log per-layer "
                         "gradient norms or activation statistics "
                         "(--diagnostics-every-steps N turns them on)."))
        return "".join(out)
    order = [m for m in DIAG_PANELS if m in panels] + sorted(set(panels) - set(DIAG_PANELS))
    plots = [_plot(plot_series(DIAG_PANELS.get(m, (m, False))[0], panels[m],
                               DIAG_PANELS.get(m, (m, False))[1])) for m in order]
    out.append('<div class="grid">' + "".join(plots) + "</div>")
    return "".join(out)


def section_findings(summary: dict[str, Any]) -> str:
    """The doctor's findings as coloured boxes (any list of dicts or strings is accepted)."""
    findings = summary.get("findings")
    out = ["<h2>Doctor's findings</h2>"]
    if findings is None:
        return out[0] + _note("summary.json has no findings (the run was not diagnosed).")
    if isinstance(findings, dict):
        findings = [dict(v, name=k) if isinstance(v, dict) else {"name": k, "message": v}
                    for k, v in findings.items()]
    if not findings:
        return out[0] + '<p class="good">No problems found.</p>'
    for item in findings:
        if not isinstance(item, dict):
            out.append(f'<div class="finding">{_esc(item)}</div>')
            continue
        level = str(item.get("severity", item.get("level", "warning"))).lower()
        title = item.get("kind") or item.get("name") or item.get("code") or "finding"
        text = item.get("message") or item.get("why") or ""
        if item.get("step") is not None:
            text = f"{text} (step {item['step']})"
        rest = {k: v for k, v in item.items() if k not in ("severity", "level", "kind", "name",
                                                            "code", "message", "why", "step")}
        extra = "".join(f"<br><small>{_esc(k)}: {_esc(_fmt(v))}</small>" for k, v in rest.items())
        out.append(f'<div class="finding {_esc(level)}"><b>{_esc(title)}</b> ({_esc(level)}): '
                   f"{_esc(text)}{extra}</div>")
    return "".join(out)


def _report_data(cfg: Any, summary: dict[str, Any]) -> tuple[Any, Any]:
    """The run's training data and test data (or None) for the pictures. A run trained out of
    core gets a sample of its file (rows spread over it), never the whole file in memory."""
    from aekit.data import load
    from aekit.data.out_of_core import ChunkedNpy, should_stream
    from aekit.pipeline import load_splits

    if not (summary.get("out_of_core") or should_stream(cfg.data.data)):
        train, test, _ = load_splits(cfg)
        return train, test
    train = ChunkedNpy(cfg.data.data).sample(MAX_CODE_POINTS)
    return train, (load(cfg.data.test) if cfg.data.test is not None else None)


def section_model_views(run_dir: Path, summary: dict[str, Any]) -> str:
    """Reconstructions (images) and the code map, from the saved model and its data."""
    out = ["<h2>Reconstructions and codes</h2>"]
    try:
        import aekit

        ae = aekit.load(run_dir)
        train, test = _report_data(ae.config, summary)
    except (AekitError, OSError) as exc:
        return out[0] + _note(f"The model or its data could not be loaded ({exc}).")
    data = test if test is not None else train
    rng = np.random.default_rng(0)
    if ae.data_kind == "image":
        pick = np.sort(rng.choice(data.n_samples, min(N_RECONSTRUCTIONS, data.n_samples),
                                  replace=False))
        scaled = ae.scaler.transform(data.x[pick])
        recon = ae.scaler.transform(ae.reconstruct(data.x[pick]))
        out.append("<h3>Originals (top) and reconstructions (bottom), test data</h3>")
        out.append(_plot(plot_reconstructions(scaled, recon, ae.sample_shape)))
    else:
        out.append(_note("Tabular data: no images to show."))
    # the test codes when the test set has labels; else the training data's (more points)
    shown, which = ((test, "test") if test is not None and test.labels is not None
                    else (train, "training"))
    pick = np.sort(rng.choice(shown.n_samples, min(MAX_CODE_POINTS, shown.n_samples),
                              replace=False))
    codes = ae.encode(shown.x[pick])
    labels = shown.labels[pick] if shown.labels is not None else None
    out.append(f"<h3>Map of the codes ({len(pick)} {which} samples"
               f"{', coloured by class' if labels is not None else ''})</h3>")
    out.append(_plot(plot_code_map(codes, labels, shown.label_names)))
    return "".join(out)


EXPLAIN_PICTURES = (
    ("traversals", "Latent traversals"),
    ("feature_errors", "Which features the model keeps and which it gives up"),
    ("unit_features", "What each unit responds to"),
)


def section_explain(run_dir: Path) -> str:
    """The output of ``aekit explain`` (``explain.json`` and its PNGs) when the run folder
    holds it: traversals, per-feature errors next to PCA's, each unit's strongest features."""
    out = ["<h2>Inside the model</h2>"]
    path = run_dir / "explain.json"
    if not path.is_file():
        return out[0] + _note("No explain output in this run folder: `aekit explain --model "
                              "RUN` writes latent traversals, per-feature errors and each "
                              "code unit's strongest input features here.")
    try:
        doc = read_json(path, "explain output")
        trav, errors, units = doc["traversals"], doc["feature_errors"], doc["unit_features"]
        rec = doc["reconstruction"]
    except (FormatError, KeyError, TypeError) as exc:
        return out[0] + _note(f"explain.json could not be read ({exc}).")
    try:
        current = weights_hash(run_dir)
        if doc.get("model_sha256") and current and doc["model_sha256"] != current:
            out.append('<p class="bad">This explanation was written for other weights than '
                       "the folder's model.safetensors (the model was trained again since): "
                       "run `aekit explain` again.</p>")
        pca = doc.get("pca") or {}
        out.append(f"<p>Data: <b>{_esc(doc.get('data'))}</b>, {_esc(doc.get('sample'))}. "
                   f"Errors in the scaled space the model works in. Reconstruction MSE "
                   f"{_fmt(rec['mse'])}"
                   + (f", PCA-{_esc(pca.get('components'))} {_fmt(rec['pca_mse'])} "
                      f"({_esc(pca.get('source'))})" if "pca_mse" in rec else "") + ".</p>")
        files = doc.get("files", {})
        pictures = {}
        for key, title in EXPLAIN_PICTURES:
            png = run_dir / str(files.get(key, f"{key}.png"))
            pictures[key] = (_plot(_png_file(png, title)) if png.is_file()
                             else _note(f"{png.name} is missing."))
        out.append(f"<h3>Latent traversals: {_esc(trav['mode'])}</h3>")
        out.append(f"<p>Each row moves one {'unit' if 'unit' in trav['mode'] else 'direction'} "
                   f"from the {trav['percentiles'][0]:g}th to the {trav['percentiles'][1]:g}th "
                   "percentile of its values, the rest of the code at its median.</p>")
        out.append(pictures["traversals"])
        out.append(html_table(
            [(d["name"], d.get("code_variance_share", "-"), d["effect_rms"],
              ", ".join(f["feature"] for f in d["top_features"][:3]))
             for d in trav["directions"]],
            ("unit / direction", "share of code variance", "effect (RMS change)",
             "features that move most")))
        out.append("<h3>Which features the model keeps and which it gives up</h3>")
        out.append(pictures["feature_errors"])
        by_name = {r["feature"]: r for r in errors["features"]}
        rows = [(name, by_name[name]["mse"], by_name[name].get("pca_mse", "-"),
                 by_name[name].get("unexplained_share") if by_name[name].get(
                     "unexplained_share") is not None else "-")
                for name in errors["worst"] if name in by_name]
        out.append("<p>The worst reconstructed features:</p>" + html_table(
            rows, ("feature", "MSE", "PCA's MSE", "share of its variance lost")))
        method = units["method"]
        out.append(f"<h3>What each unit responds to ({_esc(method)})</h3>")
        out.append(_note(units["methods"][method]))
        out.append(pictures["unit_features"])
        shown = units.get("directions") or units["units"]
        out.append(html_table(
            [(u["name"], ", ".join(f"{f['feature']} ({f[method]:+.2f})" if method ==
                                   "correlation" else f"{f['feature']} ({f[method]:.3g})"
                                   for f in u["top_features"]))
             for u in shown],
            ("unit / direction", "strongest input features")))
    except (KeyError, TypeError, ValueError, IndexError, OSError) as exc:
        return out[0] + _note(f"explain.json could not be shown ({exc!r}).")
    return "".join(out)


def section_config(run_dir: Path) -> str:
    """Every option of the run, one table per section."""
    try:
        meta = read_json(run_dir / "config.json", "model config")
    except FormatError as exc:
        return "<h2>Configuration</h2>" + _note(str(exc))
    tables = [f"<div><h3>{_esc(name)}</h3>{html_table(sorted(values.items()))}</div>"
              for name, values in meta.get("config", {}).items() if isinstance(values, dict)]
    extra = [(k, meta[k]) for k in ("sample_shape", "data_kind", "output_activation",
                                    "n_features", "aekit_version") if k in meta]
    return ("<h2>Configuration</h2>" + html_table(extra) + '<div class="grid">' +
            "".join(tables) + "</div>")


def build_report(run_dir: str | Path) -> str:
    """The report of a run folder as one HTML string.

    Raises:
        FormatError: the folder is not a run folder (no metrics.jsonl / summary.json).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FormatError(f"{run_dir}: no such run folder (expected a folder written by "
                          "`aekit train --out`)")
    records = read_metrics(run_dir / "metrics.jsonl", strict=False)  # skips a torn last line
    summary = read_json(run_dir / "summary.json", "run summary")
    body = "".join([
        f"<h1>aekit run: {_esc(run_dir.resolve().name)}</h1>",
        section_headline(summary), section_classes(summary), section_training(records, summary),
        section_diagnostics(records), section_findings(summary),
        section_model_views(run_dir, summary), section_explain(run_dir),
        section_config(run_dir),
    ])
    return html_page(f"aekit report: {run_dir.name}", body)


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` (atomically) for a run folder.

    Args:
        run_dir: the run folder.
        out: the file to write; default ``RUN_DIR/report.html``.

    Returns:
        The path written.
    """
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    atomic_write_bytes(path, build_report(run_dir).encode("utf-8"))
    return path
