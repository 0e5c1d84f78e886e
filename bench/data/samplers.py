"""P x K identity batches for metric learning (Hermans et al. 2017, Sec. 3; BoT Sec. 4)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from bench.errors import BenchError


class PKSampler(Sampler[list[int]]):
    """Batch sampler: each batch holds P identities with K samples each (P * K indices).

    Per epoch, as torchreid's ``RandomIdentitySampler``: each identity's indices are shuffled
    (drawn with replacement up to K when it has fewer than K) and cut into chunks of K, the
    incomplete remainder dropped; then P identities with chunks left are drawn at random and
    their next chunks form a batch, until fewer than P identities have chunks left.

    The epoch's batches are a function of ``(seed, epoch)`` only (never the global RNG) and are
    precomputed, so ``len()`` is exact. Call :meth:`set_epoch` before each epoch, as with
    ``DistributedSampler``; otherwise every epoch repeats epoch 0's batches.

    Distributed (DDP): every rank builds the same global batches and keeps its share of each
    batch's identities, ``P / world_size`` of them with their K samples (rank r the r-th share),
    so the ranks' batches are disjoint in identity and, concatenated in rank order, are the
    single-process batch. ``p`` must be a multiple of ``world_size``.
    """

    def __init__(
        self,
        pids: Sequence[int],
        p: int,
        k: int,
        seed: int = 0,
        *,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise BenchError(f"invalid rank {rank} of world size {world_size} for the PK sampler")
        if p % world_size:
            raise BenchError(
                f"sampler.p = {p} identities per batch cannot be split evenly over {world_size} "
                f"processes; use a multiple of {world_size}"
            )
        if p < 1:
            raise BenchError(f"sampler.p (identities per batch) must be at least 1, got {p}")
        if k < 1:
            raise BenchError(f"sampler.k (samples per identity) must be at least 1, got {k}")
        index: dict[int, list[int]] = {}
        for i, pid in enumerate(pids):
            index.setdefault(int(pid), []).append(i)
        if len(index) < p:
            raise BenchError(
                f"the training data has {len(index)} identities, but sampler.p = {p} "
                f"identities per batch; sampler.p must be at most {len(index)}"
            )
        self.p, self.k, self.seed = p, k, seed
        self.rank, self.world_size = rank, world_size
        self._index = dict(sorted(index.items()))
        self._epoch = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches ``__iter__`` and ``__len__`` refer to."""
        self._epoch = epoch

    def _batches(self) -> list[list[int]]:
        if self._cache is not None and self._cache[0] == self._epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, self._epoch])
        chunks: dict[int, list[list[int]]] = {}
        for pid, idxs in self._index.items():
            arr = np.asarray(idxs)
            if len(arr) < self.k:
                arr = rng.choice(arr, size=self.k, replace=True)
            arr = rng.permutation(arr)
            n = len(arr) // self.k
            chunks[pid] = [arr[j * self.k : (j + 1) * self.k].tolist() for j in range(n)]
        available = list(chunks)
        batches: list[list[int]] = []
        while len(available) >= self.p:
            picked = [available[j] for j in rng.choice(len(available), self.p, replace=False)]
            batch: list[int] = []
            for pid in picked:
                batch += chunks[pid].pop(0)
                if not chunks[pid]:
                    available.remove(pid)
            batches.append(batch)
        self._cache = (self._epoch, batches)
        return batches

    def _share(self, batch: list[int]) -> list[int]:
        """This rank's identities of a global batch (the whole batch with one process)."""
        size = (self.p // self.world_size) * self.k
        return batch[self.rank * size : (self.rank + 1) * size]

    def __iter__(self) -> Iterator[list[int]]:
        yield from (self._share(b) for b in self._batches())

    def __len__(self) -> int:
        return len(self._batches())
