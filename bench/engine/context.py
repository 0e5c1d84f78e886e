"""What a method gets from the harness while it runs: device, seed, progress bars, checkpoints
(the contract a method codes against is :class:`bench.api.context.MethodContext`).

``ctx.epochs(n, model=..., optimizer=..., scheduler=...)`` is the training loop's spine: it
yields epoch numbers, saves a checkpoint (states + RNG states) atomically after every epoch and,
with ``--resume``, restarts after the last saved epoch with the RNGs as they were, so a resumed
run ends where an uninterrupted one would.

Under ``torchrun`` (DDP, :mod:`bench.engine.distributed`) the context knows its ``rank`` and
``world_size``: ``distribute(model)`` wraps the model in DistributedDataParallel with synchronised
batch norm, ``gather_batch`` gives a loss the global batch, progress bars show on rank 0 only,
and only rank 0 writes checkpoints (each rank's RNG state is saved in it), the other ranks wait.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from bench.api.context import Stateful
from bench.engine import distributed
from bench.engine.checkpoints import atomic_torch_save, load_checkpoint
from bench.progress import progress

T = TypeVar("T")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; ask torch for deterministic kernels where it has them."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def rng_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's RNG states as tensors and plain data, so a checkpoint holding
    them loads with ``torch.load(weights_only=True)`` (NumPy's key array becomes a tensor)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(tuple(state["python"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class RunContext:
    """Per-run services for a method: device, seed, data workers, progress, checkpoints."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    workers: int = 0
    checkpoint_dir: Path | None = None
    resume: bool = False
    show_progress: bool = True
    resumed_from: int | None = None  # epoch restored by the last ``epochs()`` call, if any
    history: list[dict[str, float]] = field(default_factory=list)
    rank: int = 0  # this process in a DDP run (torchrun); 0 otherwise
    world_size: int = 1
    # Called as on_epoch_end(epoch, num_epochs) after each epoch, before its checkpoint is saved
    # (the harness's validation: bench.engine.selection.Validator).
    on_epoch_end: Callable[[int, int], None] | None = None

    @property
    def is_main(self) -> bool:
        """True on the process that writes checkpoints and shows progress (rank 0)."""
        return self.rank == 0

    def distribute(self, model: nn.Module) -> nn.Module:
        """The module to train: ``model`` itself, or in a DDP run ``model`` (its batch norm
        synchronised in place) wrapped in DistributedDataParallel. Keep using ``model`` for
        saving, checkpoints and evaluation."""
        if self.world_size == 1:
            return model
        return distributed.wrap_ddp(model, self.device)

    def gather_batch(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The global batch of each tensor (every rank's rows in rank order, differentiable),
        for losses that compare samples with each other; the tensors themselves on one process."""
        if self.world_size == 1:
            return tensors
        return tuple(distributed.all_gather_with_grad(t) for t in tensors)

    def all_reduce_sum(self, *values: float) -> list[float]:
        """Scalars summed over the ranks (e.g. an epoch's loss totals for ``log_epoch``)."""
        if self.world_size == 1:
            return [float(v) for v in values]
        return distributed.all_reduce_sum(*values)

    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / "last.pt"

    def progress(self, iterable: Iterable[T], desc: str, total: int | None = None) -> Any:
        """A tqdm bar on stderr in a terminal, a line a minute at most elsewhere
        (:func:`bench.progress.progress`); nothing with ``--no-progress``."""
        return progress(
            iterable,
            desc=desc,
            total=total,
            leave=False,
            enabled=self.show_progress and self.is_main,
            final=False,
            dynamic_ncols=True,
        )

    def epochs(self, num_epochs: int, **stateful: Stateful) -> Iterator[int]:
        """Yield ``start..num_epochs-1``; checkpoint ``stateful`` after each; resume if asked."""
        start = 0
        path = self.checkpoint_path
        if self.resume and path is not None and path.is_file():
            ckpt = load_checkpoint(path)
            for name, obj in stateful.items():
                obj.load_state_dict(ckpt["states"][name])
            per_rank = ckpt.get("rng_per_rank")
            if self.world_size > 1 and per_rank is not None and len(per_rank) == self.world_size:
                set_rng_state(per_rank[self.rank])
            else:
                set_rng_state(ckpt["rng"])
            self.history = list(ckpt.get("history", []))
            start = int(ckpt["epoch"]) + 1
            self.resumed_from = int(ckpt["epoch"])
            if self.is_main:
                tqdm.write(f"resumed from {path} after epoch {start}/{num_epochs}")
        bar = progress(
            range(start, num_epochs),
            desc="train",
            initial=start,
            total=num_epochs,
            enabled=self.show_progress and self.is_main,
            dynamic_ncols=True,
            unit="epoch",
            interval=0.0,  # off a terminal: one line per epoch
        )
        for epoch in bar:
            yield epoch
            if self.on_epoch_end is not None:
                self.on_epoch_end(epoch, num_epochs)
            if self.history and self.history[-1].get("epoch") == epoch:
                bar.set_postfix(
                    {k: f"{v:.3g}" for k, v in self.history[-1].items() if k != "epoch"}
                )
            if path is not None:
                self._save_checkpoint(path, epoch, stateful)

    def _save_checkpoint(self, path: Path, epoch: int, stateful: dict[str, Stateful]) -> None:
        """Rank 0 writes the checkpoint atomically (with every rank's RNG state in a DDP run);
        the other ranks wait until it is on disk."""
        rng = rng_state()
        per_rank = distributed.all_gather_object(rng) if self.world_size > 1 else None
        if self.is_main:
            ckpt = {
                "epoch": epoch,
                "states": {name: obj.state_dict() for name, obj in stateful.items()},
                "rng": rng,
                "history": self.history,
            }
            if per_rank is not None:
                ckpt["rng_per_rank"] = per_rank
            atomic_torch_save(ckpt, path)
        if self.world_size > 1:
            distributed.barrier()

    def log_epoch(self, epoch: int, **scalars: float) -> None:
        """Record this epoch's scalars (mean loss, accuracy, lr); shown on the progress bar."""
        self.history.append({"epoch": epoch, **{k: float(v) for k, v in scalars.items()}})
