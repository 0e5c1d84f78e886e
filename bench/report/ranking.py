"""Ranked lists of single queries, as evaluation ranks them, for the report's figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.evaluation.protocol import sample_labels
from bench.evaluation.rules import is_junk, is_removed
from bench.results.artifacts import EvalArtifacts


@dataclass
class RankedList:
    """One query's ranking: gallery indices best first, their distances and true-match flags,
    after evaluation's removals (same pid and camera; pid -1)."""

    query: int
    gallery: np.ndarray
    distances: np.ndarray
    matches: np.ndarray


def ranked_list(
    dist_row: np.ndarray,
    q_pid: int,
    q_camid: int,
    g_pids: np.ndarray,
    g_camids: np.ndarray,
    query: int = 0,
    top_k: int | None = 10,
) -> RankedList:
    """The first ``top_k`` kept gallery entries of one query (all with ``None``), ranked as
    :func:`bench.evaluation.rank.evaluate_rank` ranks them (stable ascending sort of distances,
    the entries :mod:`bench.evaluation.rules` leaves out dropped)."""
    order = np.argsort(dist_row, kind="stable")
    pids, camids = g_pids[order], g_camids[order]
    kept = order[~(is_removed(pids == q_pid, q_camid, camids) | is_junk(pids))][:top_k]
    return RankedList(query, kept, dist_row[kept], g_pids[kept] == q_pid)


def select_queries(
    art: EvalArtifacts, dist: np.ndarray, chosen: Sequence[str], count: int, seed: int
) -> list[int]:
    """Query indices: the ``chosen`` ones (an index into the query list, or an image's file
    name or path), else ``count`` drawn at random (``seed``) among queries with a true match."""
    if chosen:
        out = []
        names = {}
        for i, s in enumerate(art.query):
            names.setdefault(s.path, i)
            names.setdefault(Path(s.path).name, i)
        for item in chosen:
            text = str(item).strip()
            if text.isdigit() and int(text) < len(art.query):
                out.append(int(text))
            elif text in names:
                out.append(names[text])
            else:
                raise BenchError(
                    f"--query {item!r} names no query: give an index from 0 to "
                    f"{len(art.query) - 1} or a query image's file name (e.g. "
                    f"{Path(art.query[0].path).name})"
                )
        return out
    if count < 1:
        raise BenchError(f"--queries must be at least 1, got {count}")
    q_pids, q_camids = sample_labels(art.query)
    g_pids, g_camids = sample_labels(art.gallery)
    valid = [
        i
        for i in range(len(art.query))
        if ranked_list(dist[i], q_pids[i], q_camids[i], g_pids, g_camids, i, None).matches.any()
    ]
    pool = valid or list(range(len(art.query)))
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
    return sorted(pool[i] for i in picked)
