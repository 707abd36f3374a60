"""Offline: data sets, training, evaluation and their reports, the demo models. Never imported by
``serving``."""
