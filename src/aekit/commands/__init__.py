"""One module per ``aekit`` verb (or family of verbs), each with ``register(subparsers)``."""
