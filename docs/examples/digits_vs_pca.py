"""Train on digits and compare with PCA

An autoencoder with an 8-value code trained on scikit-learn's 8x8 digits, next to PCA with 8
components fitted on the same training images. The figure shows ten test digits (top), the
autoencoder's reconstructions (middle) and PCA's (bottom); the script prints both test errors
(squared error per image, pixels in [0, 1]). The model starts from PCA's solution, so its
error can only be lower.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

import aekit

x, _ = load_digits(return_X_y=True)
x = x / 16.0  # pixels in [0, 1]
x_train, x_test = train_test_split(x, test_size=0.2, random_state=0)

ae = aekit.Autoencoder(latent_dim=8, seed=0, threads=1, progress=False)
history = ae.fit(x_train, epochs=40)
x_ae = ae.reconstruct(x_test)

pca = PCA(n_components=8).fit(x_train)
x_pca = pca.inverse_transform(pca.transform(x_test))


def sse_per_image(a, b):
    return float(((a - b) ** 2).sum(axis=1).mean())


e_ae, e_pca = sse_per_image(x_test, x_ae), sse_per_image(x_test, x_pca)
print(f"trained {len(history['loss'])} epochs")
print(f"test error (squared error per image): aekit {e_ae:.3f}   PCA-8 {e_pca:.3f}   "
      f"ratio {e_ae / e_pca:.2f}x")
print("doctor:", [f["kind"] for f in ae.findings()] or "no problem found")

fig, axes = plt.subplots(3, 10, figsize=(10, 3.3))
for col in range(10):
    for row, (images, label) in enumerate([(x_test, "test"), (x_ae, "aekit"), (x_pca, "PCA-8")]):
        ax = axes[row, col]
        ax.imshow(np.clip(images[col], 0, 1).reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([]), ax.set_yticks([])
        if col == 0:
            ax.set_ylabel(label)
fig.suptitle(f"8 values per image: aekit {e_ae:.3f} vs PCA {e_pca:.3f} squared error per image")
fig.tight_layout()
fig.savefig("reconstructions.png", dpi=80)
