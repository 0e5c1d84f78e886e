"""The Market-1501 ranking rules (Zheng et al. 2015), coded once: evaluation, verification and the
ranked-list figures of ``bench report`` all leave out the same gallery entries.

* Junk (pid ``-1``) is left out of every ranking.
* A gallery entry with the query's pid *and* camera is left out of that query's ranking (the
  same person seen by the same camera is not a re-identification).
* Everything else (pid ``0`` distractors included) is ranked; a true match shares the pid.

Retrieval without cameras uses :func:`pseudo_cameras`: all-vs-all retrieval leaves out only the
query itself, query-vs-gallery nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch

from bench.api.samples import JUNK_PID

L = TypeVar("L", np.ndarray, torch.Tensor)


def is_junk(g_pids: L, junk_pid: int = JUNK_PID) -> L:
    """Gallery entries left out of every ranking."""
    return g_pids == junk_pid


def is_removed(same_pid: L, q_camid: L | int, g_camids: L) -> L:
    """Gallery entries left out of a query's ranking: its identity (``same_pid``, the entries
    whose pid is the query's) seen by its camera. Broadcasts: one query against a row, or
    queries as a column against their entries."""
    return same_pid & (g_camids == q_camid)


def pseudo_cameras(num_q: int, num_g: int, exclude_self: bool) -> tuple[np.ndarray, np.ndarray]:
    """Camera ids that make :func:`is_removed` express retrieval without cameras: with
    ``exclude_self`` (query set = gallery set) entry ``i`` is left out of query ``i``'s ranking
    only, else nothing is."""
    if exclude_self:
        if num_q != num_g:
            raise ValueError(f"exclude_self needs a square distmat, got {num_q} x {num_g}")
        cams = np.arange(num_q, dtype=np.int64)  # same "camera" only for the entry itself
        return cams, cams
    return np.zeros(num_q, dtype=np.int64), np.ones(num_g, dtype=np.int64)


@dataclass
class Groups:
    """The kept gallery columns grouped by pid, and each query's group and true-match count.

    ``order`` lists kept-column positions sorted by (pid, column); query ``i``'s pid occupies
    ``order[start[i] : start[i] + length[i]]`` (``length`` 0 when the pid is not in the gallery).
    """

    kept: np.ndarray  # gallery column of each kept position (junk dropped)
    g_pid: np.ndarray  # pid / camera per kept position
    g_cam: np.ndarray
    order: np.ndarray
    start: np.ndarray  # per query
    length: np.ndarray  # per query: gallery entries with its pid (true matches + removed)
    num_pos: np.ndarray  # per query: true matches (same pid, other camera)
    _on_device: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, repr=False
    )

    def tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``order``, ``g_pid`` and ``g_cam`` as tensors on ``device``, made once per device."""
        key = str(device)
        if key not in self._on_device:
            arrays = (self.order, self.g_pid, self.g_cam)
            self._on_device[key] = tuple(torch.from_numpy(a).to(device) for a in arrays)
        return self._on_device[key]

    def entries(
        self, rows: np.ndarray, q_camids: np.ndarray, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For query ``rows``: the kept positions of each row's same-pid gallery entries
        (``(B, L)``, padded), which of them are true matches, and which :func:`is_removed`
        leaves out (the query's camera); padding is neither."""
        order, _, g_cam = self.tensors(device)
        length = self.length[rows]
        slot = np.arange(int(length.max(initial=0)))
        in_group = torch.from_numpy(slot[None, :] < length[:, None]).to(device)
        if len(order):
            index = np.minimum(self.start[rows][:, None] + slot[None, :], len(order) - 1)
            cols = order[torch.from_numpy(index).to(device)]
        else:
            cols = torch.zeros_like(in_group, dtype=torch.long)
        q_cam = torch.from_numpy(q_camids[rows]).to(device)[:, None]
        removed = is_removed(in_group, q_cam, g_cam[cols])
        return cols, in_group & ~removed, removed


def _lookup(
    keys: np.ndarray, a: np.ndarray, b: np.ndarray, queries: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(a[i], b[i])`` where ``keys[i] == query`` (``keys`` sorted, unique), else ``(0, 0)``."""
    if len(keys) == 0:
        zero = np.zeros(len(queries), dtype=np.int64)
        return zero, zero
    at = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    found = keys[at] == queries
    return np.where(found, a[at], 0), np.where(found, b[at], 0)


def gallery_groups(
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    junk_pid: int | None = JUNK_PID,
) -> Groups:
    """The rules applied to labels: junk columns dropped (none with ``junk_pid=None``), the kept
    columns grouped by pid, and per query its group and its number of true matches (its group
    less the entries :func:`is_removed` leaves out)."""
    kept = (
        np.flatnonzero(~is_junk(g_pids, junk_pid))
        if junk_pid is not None
        else np.arange(len(g_pids))
    )
    g_pid, g_cam = g_pids[kept], g_camids[kept]
    order = np.lexsort((np.arange(len(g_pid)), g_pid))
    uniq, first, counts = np.unique(g_pid[order], return_index=True, return_counts=True)
    start, length = _lookup(uniq, first, counts, q_pids)
    # Entries :func:`is_removed` leaves out (the query's pid *and* camera), counted per
    # (pid, camera) pair code.
    _, pid_code = np.unique(np.concatenate([g_pid, q_pids]), return_inverse=True)
    cams, cam_code = np.unique(np.concatenate([g_cam, q_camids]), return_inverse=True)
    pair_code = pid_code.astype(np.int64) * len(cams) + cam_code
    g_code, q_code = pair_code[: len(g_pid)], pair_code[len(g_pid) :]
    u_pairs, pair_counts = np.unique(g_code, return_counts=True)
    _, same = _lookup(u_pairs, pair_counts, pair_counts, q_code)
    return Groups(kept, g_pid, g_cam, order, start, length, length - same)
