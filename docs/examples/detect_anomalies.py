"""Detect anomalies in a small table

A table of 300 sensor readings in 6 columns of mixed units (temperature, pressure, flow, rpm,
load, pH) that move together, with the first 6 rows pushed off that pattern. The
`aekit.OutlierDetector` trains on all 300 rows (anomalies included, as real data would be),
scores every row and flags the top 2% (`contamination=0.02`). The figure shows each row's
score with the threshold, and how the flagged rows' scores split between the columns.
"""

import matplotlib.pyplot as plt
import numpy as np

from aekit import OutlierDetector

columns = ["temp", "pressure", "flow", "rpm", "load", "ph"]
rng = np.random.default_rng(0)
latent = rng.normal(size=(300, 2))  # two hidden causes drive all six sensors
mixing = rng.normal(size=(2, 6))
units = np.array([20.0, 1000.0, 5.0, 300.0, 50.0, 0.5])  # mixed scales
offset = np.array([60.0, 101_000.0, 40.0, 3000.0, 400.0, 7.0])
x = (latent @ mixing + 0.05 * rng.normal(size=(300, 6))) * units + offset
x[:6] += rng.normal(scale=3.0, size=(6, 6)) * units  # 6 faulty rows

det = OutlierDetector(contamination=0.02, random_state=0, threads=1).fit(x)
scores = det.anomaly_score(x)            # higher = more anomalous
labels = det.predict(x)                  # -1 outlier, +1 inlier
flagged = np.flatnonzero(labels == -1)
print(f"{len(flagged)} of {len(x)} rows flagged; threshold {det.threshold_:.2f}")
shares = det.feature_errors(x[flagged])
shares = shares / shares.sum(axis=1, keepdims=True)
for row, share in zip(flagged, shares):
    top = np.argsort(share)[::-1][:3]
    parts = ", ".join(f"{columns[j]} {share[j]:.0%}" for j in top)
    print(f"  row {row}: score {scores[row]:.1f} ({parts})")

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
left.scatter(np.arange(len(x)), scores, s=8, c=np.where(labels == -1, "C3", "C0"))
left.axhline(det.threshold_, color="k", linestyle="--", label="threshold")
left.set_yscale("log")
left.set_xlabel("row")
left.set_ylabel("anomaly score")
left.set_title("scores (red: flagged)")
left.legend()
bottom = np.zeros(len(flagged))
for j, name in enumerate(columns):
    right.bar([str(r) for r in flagged], shares[:, j], bottom=bottom, label=name)
    bottom += shares[:, j]
right.set_xlabel("flagged row")
right.set_ylabel("share of the score")
right.set_title("which columns made each row stand out")
right.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1.25, 1))
fig.tight_layout()
fig.savefig("scores.png", dpi=80)
