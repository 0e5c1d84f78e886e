"""The clip-level protocol (``protocol.level=clip``): frame representations pooled per clip."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from bench.api.samples import Sample
from bench.errors import BenchError

#: ``protocol.level`` values: rank frames, or clips (temporal mean pooling of frame features).
LEVELS = ("frame", "clip")


def clip_groups(samples: Sequence[Sample], role: str) -> tuple[list[Sample], torch.Tensor]:
    """The clips of ``samples`` in order of first appearance, and the ``(clips, frames)``
    averaging matrix whose row ``c`` holds ``1/n_c`` at the ``n_c`` frames of clip ``c``.

    A clip is represented by its first frame's sample (path, pid, camid, text). Frames without
    a ``clip`` id, or one clip id with two identities or cameras, are errors naming the sample.
    """
    index: dict[str, int] = {}
    clips: list[Sample] = []
    members: list[int] = []
    for s in samples:
        if s.clip is None:
            raise BenchError(
                f"protocol.level=clip needs clip ids, but {role} sample {s.path} has none "
                "(this dataset provides no clips: use protocol.level=frame)"
            )
        if s.clip not in index:
            index[s.clip] = len(clips)
            clips.append(dataclasses.replace(s, frame=None))
        first = clips[index[s.clip]]
        if (first.pid, first.camid) != (s.pid, s.camid):
            raise BenchError(
                f"clip {s.clip!r} mixes identities or cameras ({first.path} and {s.path})"
            )
        members.append(index[s.clip])
    rows = torch.tensor(members, dtype=torch.long)
    counts = torch.bincount(rows, minlength=len(clips)).float()
    pool = torch.zeros(len(clips), len(samples))
    pool[rows, torch.arange(len(samples))] = 1.0 / counts[rows]
    return clips, pool


def pool_clips(
    query: Sequence[Sample], gallery: Sequence[Sample], represented: dict[str, torch.Tensor]
) -> tuple[list[Sample], list[Sample], dict[str, torch.Tensor]]:
    """Frame-level representations -> clip level (the ``protocol.level=clip`` protocol).

    Features are mean-pooled over each clip's frames (temporal mean pooling). A method that
    answers with ``score`` gets the mean of its frame-pair similarities over the two clips,
    ``P_q S P_g^T``: for a dot-product score that is the dot product of mean-pooled features.
    """
    q_clips, q_pool = clip_groups(query, "query")
    g_clips, g_pool = clip_groups(gallery, "gallery")
    if "similarity" in represented:
        sim = represented["similarity"].detach().float().cpu()
        return q_clips, g_clips, {"similarity": q_pool @ sim @ g_pool.T}
    return (
        q_clips,
        g_clips,
        {
            "query_features": q_pool @ represented["query_features"].detach().float().cpu(),
            "gallery_features": g_pool @ represented["gallery_features"].detach().float().cpu(),
        },
    )
