"""aekit: train autoencoders by gradient descent, see why training goes wrong, put them to work.

    import aekit
    ae = aekit.Autoencoder(latent_dim=32, hidden=(64, 32))
    history = ae.fit(x, epochs=50, batch_size=32, validation_split=0.1)
    z = ae.encode(x); x_hat = ae.decode(z); ae.save("model_dir"); ae = aekit.load("model_dir")
"""

__version__ = "0.1.0"

from aekit.api import Autoencoder, load  # noqa: E402
from aekit.config import RunConfig  # noqa: E402
from aekit.estimator import AutoencoderTransformer  # noqa: E402
from aekit.apps.generate import generate  # noqa: E402

__all__ = ["Autoencoder", "RunConfig", "__version__", "load"]
