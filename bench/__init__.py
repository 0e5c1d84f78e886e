"""reid-bench: one protocol to train, evaluate and rank re-identification methods.

The plugin API is importable from here (``from bench import Method, register_method``); see
:mod:`bench.api`. It is loaded on first use, so ``bench --help`` and ``bench leaderboard`` do not
pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "DatasetAdapter",
    "Method",
    "MethodContext",
    "Sample",
    "Splits",
    "Variant",
    "__version__",
    "register_dataset",
    "register_method",
]

if TYPE_CHECKING:
    from bench.api import (
        DatasetAdapter,
        Method,
        MethodContext,
        Sample,
        Splits,
        Variant,
        register_dataset,
        register_method,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        import bench.api

        return getattr(bench.api, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
