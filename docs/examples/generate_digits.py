"""Generate new digits

A plain autoencoder has no prior to sample from, so `aekit.generate` fits a Gaussian mixture to
the codes of the training images, samples new codes from it and decodes them. Its novelty check
compares each new image's distance to its nearest training image with the same distance for
real images: a ratio near 0 would mean the model copies its training set. The second figure
decodes the straight line between the codes of two digits
(`aekit.apps.generate.interpolate`).
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

import aekit
from aekit.apps.generate import interpolate

x, y = load_digits(return_X_y=True)
x = x / 16.0  # pixels in [0, 1]
ae = aekit.Autoencoder(latent_dim=12, seed=0, threads=1, progress=False)
ae.fit(x, epochs=60)

result = aekit.generate(ae, n=40, data=x, seed=0)
print(f"sampled {len(result.samples)} codes from the {result.method}")
print(result.novelty.format())


def show(images, rows, cols, path, title):
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9 + 0.4))
    for ax, image in zip(axes.flat, images):
        ax.imshow(image.clip(0, 1).reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


show(result.samples, 4, 10, "samples.png", "40 generated digits")
a, b = x[y == 0][0], x[y == 6][0]
line = interpolate(ae, a, b, steps=10)  # (10, 64): from a 0 to a 6
show(line, 1, 10, "interpolation.png", "from a 0 to a 6 through the code space")
