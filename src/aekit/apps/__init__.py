"""Uses of a trained autoencoder: reduce, compress, generate, sweep."""
