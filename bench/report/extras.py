"""The optional packages of ``bench report`` and ``bench leaderboard --plot``, asked for once."""

from __future__ import annotations

from types import ModuleType

from bench.errors import BenchError


def import_figures() -> ModuleType:
    """:mod:`bench.report.figures`, or a BenchError saying how to install matplotlib and
    scikit-learn (the ``report`` extra) when either is missing."""
    try:
        import matplotlib  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise BenchError(
            f"bench report needs matplotlib and scikit-learn ({exc.name} is missing): "
            "pip install 'reid-bench[report]'"
        ) from exc
    from bench.report import figures

    return figures
