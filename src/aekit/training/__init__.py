"""Training: the loop and everything that shapes it."""
