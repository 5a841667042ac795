"""Reduce with the scikit-learn transformer

`aekit.AutoencoderTransformer` is a drop-in for `PCA` in a scikit-learn pipeline. Here both
reduce the 64 pixels of the digits to 2 values; the figure shows the two maps of the test
digits, coloured by class, and the script prints what a logistic regression reaches on each
2-value code, and on 8-value codes.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aekit import AutoencoderTransformer

x, y = load_digits(return_X_y=True)
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)


def reducers(k):
    return {"aekit": AutoencoderTransformer(n_components=k, epochs=30, random_state=0,
                                            threads=1),
            "PCA": PCA(n_components=k, random_state=0)}


fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
for ax, (name, reducer) in zip(axes, reducers(2).items()):
    pipe = make_pipeline(StandardScaler(), reducer, LogisticRegression(max_iter=1000))
    pipe.fit(x_train, y_train)
    codes = pipe[:-1].transform(x_test)  # (n_test, 2)
    print(f"{name:>5}, 2 values: test accuracy {pipe.score(x_test, y_test):.3f}")
    points = ax.scatter(codes[:, 0], codes[:, 1], c=y_test, cmap="tab10", s=8)
    ax.set_title(f"{name}: 2 values per digit")
    ax.set_xticks([]), ax.set_yticks([])
fig.colorbar(points, ax=axes, ticks=range(10), label="digit")
fig.savefig("maps.png", dpi=80)

for name, reducer in reducers(8).items():
    pipe = make_pipeline(StandardScaler(), reducer, LogisticRegression(max_iter=1000))
    pipe.fit(x_train, y_train)
    print(f"{name:>5}, 8 values: test accuracy {pipe.score(x_test, y_test):.3f}")
