"""One run on several processes: torch DistributedDataParallel under ``torchrun``.

``torchrun --nproc-per-node N -m bench run ...`` starts N copies of ``bench run`` with the
environment variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`process_group` turns them into a process group (NCCL on CUDA, gloo on
the CPU). Outside torchrun every helper here is the single-process identity, so methods call
them unconditionally.

The contract that makes a DDP run equal a single-process run of the same global batch:

* every rank draws the same global P x K batch and keeps its share of the identities
  (:class:`bench.data.samplers.PKSampler` with ``rank``/``world_size``);
* batch-norm statistics are those of the global batch (:func:`convert_sync_batchnorm`);
* losses that compare samples with each other (batch-hard triplet) see the global batch
  (:func:`all_gather_with_grad`); per-sample losses average per rank and DDP averages the
  gradients, which is the global mean again;
* only rank 0 writes checkpoints and the run record; evaluation embeds a shard per rank and
  gathers the rows back in the original order (:func:`gather_rows`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from bench.errors import BenchError


def env_world_size() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when not launched by torchrun)."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(raw)
    except ValueError as exc:
        raise BenchError(
            f"environment variable WORLD_SIZE must be an integer; got {raw!r}"
        ) from exc


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Processes in the run (1 without a process group)."""
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_initialized() else 0


def is_main() -> bool:
    """True on rank 0, the process that writes checkpoints, records and messages."""
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


@contextmanager
def process_group(device: str = "cpu") -> Iterator[None]:
    """Join torchrun's process group for the block (gloo for ``cpu``, NCCL for ``cuda``).

    A no-op when ``WORLD_SIZE`` is absent or 1, or when a group already exists (then its owner
    destroys it). On CUDA each process uses ``cuda:LOCAL_RANK`` (see :func:`local_device`).
    """
    if env_world_size() <= 1 or is_initialized():
        yield
        return
    if not dist.is_available():
        raise BenchError("torchrun asked for a distributed run, but torch.distributed is missing")
    for key in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if key not in os.environ:
            raise BenchError(
                f"WORLD_SIZE is set but {key} is not: launch distributed runs with torchrun "
                "(torchrun --nproc-per-node N -m bench run ...)"
            )
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """In a distributed CUDA run, ``cuda:LOCAL_RANK``; otherwise ``device`` unchanged."""
    if device.type == "cuda" and world_size() > 1:
        return torch.device("cuda", local_rank())
    return device


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first, the other ranks after it (e.g. generating a dataset once)."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def shard(n: int) -> slice:
    """This rank's contiguous share of ``range(n)``; shares in rank order cover it in order."""
    w, r = world_size(), rank()
    base, extra = divmod(n, w)
    start = r * base + min(r, extra)
    return slice(start, start + base + (1 if r < extra else 0))


def _comm_device() -> torch.device:
    if is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gather_rows(local: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``local`` rows (ranks may hold different numbers of rows) in
    rank order, on every rank; returned on ``local``'s device. Identity with one process."""
    if world_size() == 1:
        return local
    device = _comm_device()
    x = local.to(device)
    sizes = torch.tensor([x.shape[0]], device=device)
    all_sizes = [torch.zeros_like(sizes) for _ in range(world_size())]
    dist.all_gather(all_sizes, sizes)
    counts = [int(s.item()) for s in all_sizes]
    padded = x.new_zeros((max(counts), *x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:c] for p, c in zip(parts, counts)]).to(local.device)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks. Every rank's loss depends on the sum, so the gradient is summed too."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        out = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


class _AllGather(torch.autograd.Function):
    """Concatenate equal-shaped tensors of all ranks; the gradient of this rank's rows is the
    sum of every rank's gradient for them (a reduce-scatter)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad.chunk(world_size())[rank()]


def all_gather_with_grad(local: torch.Tensor) -> torch.Tensor:
    """Every rank's ``local`` (equal shapes) concatenated in rank order, differentiable.

    The backward pass gives this rank's rows the sum of every rank's gradient for them, so a
    loss computed on the gathered batch, after DDP averages the gradients, trains exactly as
    that loss on one process would.
    """
    if world_size() == 1:
        return local
    return _AllGather.apply(local.to(_comm_device())).to(local.device)


def all_reduce_sum(*values: float) -> list[float]:
    """Sum scalars over ranks (e.g. loss totals for the epoch log)."""
    if world_size() == 1:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return t.cpu().tolist()


def all_gather_object(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm over the global batch of a CPU (gloo) DDP run; plain batch norm otherwise.

    torch's ``nn.SyncBatchNorm`` is CUDA-only (its kernels ``batch_norm_stats`` and friends have
    no CPU version, and DDP refuses it on CPU modules). In training with several processes this
    layer computes the global batch mean and biased variance with two differentiable all-reduces
    (the backward pass sums the gradients over ranks, as SyncBatchNorm's does), normalises with
    them and updates the running statistics as ``nn.BatchNorm`` does on the whole global batch
    (unbiased variance, ``momentum``).
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        count = torch.tensor([float(input.numel() // input.size(1))], dtype=torch.float64)
        dist.all_reduce(count)
        n = float(count.item())
        mean = _AllReduceSum.apply(input.sum(dims)) / n
        centered = input - mean.view(shape)
        var = _AllReduceSum.apply((centered * centered).sum(dims)) / n
        out = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (
                    1.0 / float(self.num_batches_tracked.item())
                    if self.momentum is None
                    else self.momentum
                )
                unbiased = var.detach() * (n / max(n - 1.0, 1.0))
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        return out


def _cpu_sync(module: nn.Module) -> nn.Module:
    """``module`` with every batch-norm layer replaced by a :class:`CPUSyncBatchNorm` holding
    the same weights and statistics (as ``nn.SyncBatchNorm.convert_sync_batchnorm`` does)."""
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, CPUSyncBatchNorm
    ):
        out = CPUSyncBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        )
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _cpu_sync(child))
    return out


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace every ``BatchNorm*d`` inside ``module`` by a synchronised one, in place: torch's
    ``nn.SyncBatchNorm`` on CUDA, :class:`CPUSyncBatchNorm` on the CPU. Weights and running
    statistics are kept; state-dict keys do not change."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        raise TypeError("convert_sync_batchnorm converts the layers inside a model, not a BN layer")
    if device.type == "cuda":
        nn.SyncBatchNorm.convert_sync_batchnorm(module)
    else:
        _cpu_sync(module)
    return module


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with synchronised batch norm inside ``DistributedDataParallel`` (in a
    distributed run); ``model`` itself otherwise. The original object stays the module that
    holds the weights (save and evaluate that one, not the wrapper)."""
    if world_size() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    convert_sync_batchnorm(model, device)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)
