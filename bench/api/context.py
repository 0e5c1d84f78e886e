"""What a method may use of the harness while it runs: ``self.ctx``, a :class:`MethodContext`.

The harness passes its run context (:class:`bench.engine.context.RunContext`); this protocol is
the part of it that is a contract, so that a method depends on the API and not on the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol, TypeVar

import torch
from torch import nn

T = TypeVar("T")


class Stateful(Protocol):
    """Anything with ``state_dict``/``load_state_dict``: a model, optimizer, scheduler, scaler."""

    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


class MethodContext(Protocol):
    """Device, seed, data workers, progress bars, checkpointed epochs and, under ``torchrun``,
    the process's place in the DDP run."""

    device: torch.device
    seed: int
    workers: int  # DataLoader worker processes (``data.workers``)
    rank: int  # this process in a DDP run; 0 otherwise
    world_size: int

    @property
    def is_main(self) -> bool:
        """True on the process that writes checkpoints and shows progress (rank 0)."""
        ...

    def progress(self, iterable: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
        """``iterable`` with a progress bar (hidden with ``--no-progress`` and off rank 0)."""
        ...

    def epochs(self, num_epochs: int, **stateful: Stateful) -> Iterator[int]:
        """The epochs still to train; ``stateful`` is checkpointed after each and restored on
        ``--resume``, RNG states included, so a resumed run ends as an uninterrupted one."""
        ...

    def log_epoch(self, epoch: int, **scalars: float) -> None:
        """Record an epoch's scalars (mean loss, accuracy, lr) for the bar and the checkpoint."""
        ...

    def distribute(self, model: nn.Module) -> nn.Module:
        """The module to train: ``model``, or ``model`` wrapped for DDP under ``torchrun``."""
        ...

    def gather_batch(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The global batch of each tensor (every rank's rows, differentiable)."""
        ...

    def all_reduce_sum(self, *values: float) -> list[float]:
        """Scalars summed over the ranks of a DDP run (themselves on one process)."""
        ...
