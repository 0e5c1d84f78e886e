"""reid-bench: one protocol to train, evaluate and rank re-identification methods."""

__version__ = "0.1.0"
