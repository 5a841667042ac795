"""Baselines every result is compared with."""
