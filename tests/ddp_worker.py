"""Run by tests/test_distributed.py under torchrun (2 processes, gloo): checks the DDP building
blocks against one process, then prints ``DDP-OK <rank>``. Any mismatch raises (exit code 1)."""

from __future__ import annotations

import torch
import torch.distributed as dist

from bench.data.samplers import PKSampler
from bench.engine import distributed
from bench.engine.context import RunContext
from bench.losses import CrossEntropyLabelSmooth, TripletLoss
from bench.plugins import get_method, load_plugins


def check_gather_rows(rank: int, world: int) -> None:
    n = 7  # uneven shards: 4 + 3 rows
    part = distributed.shard(n)
    assert part.stop - part.start == (4 if rank == 0 else 3), part
    rows = torch.arange(n, dtype=torch.float32)[part].unsqueeze(1).repeat(1, 3)
    gathered = distributed.gather_rows(rows)
    assert torch.equal(gathered, torch.arange(n, dtype=torch.float32).unsqueeze(1).repeat(1, 3))
    empty = distributed.gather_rows(torch.zeros(0, 2) if rank == 1 else torch.ones(2, 2))
    assert torch.equal(empty, torch.ones(2, 2))


def check_sampler(rank: int, world: int) -> None:
    pids = [i % 10 for i in range(80)]
    single = PKSampler(pids, p=4, k=4, seed=3)
    mine = PKSampler(pids, p=4, k=4, seed=3, rank=rank, world_size=world)
    single.set_epoch(2)
    mine.set_epoch(2)
    shares = distributed.all_gather_object(list(mine))
    for step, batch in enumerate(single):
        assert shares[0][step] + shares[1][step] == batch
        ids = [{pids[i] for i in share[step]} for share in shares]
        assert len(ids[0]) == len(ids[1]) == 2 and not ids[0] & ids[1]


def check_gradients(rank: int, world: int) -> None:
    """One BoT step (ID + batch-hard triplet, BNNeck) in float64: the DDP gradients and batch-norm
    statistics equal those of one process on the whole batch."""
    net_cls = get_method("bot").family

    def build() -> torch.nn.Module:
        torch.manual_seed(0)
        from bench.plugins.methods.bot import BoTNet  # loaded by load_plugins()

        return BoTNet(18, 8, 1, "none", 4).double()

    assert net_cls.name == "bot"
    x = torch.randn(16, 3, 32, 16, generator=torch.Generator().manual_seed(1)).double()
    pids = torch.arange(4).repeat_interleave(4)
    id_loss, triplet = CrossEntropyLabelSmooth(4), TripletLoss(0.3)

    ref = build().train()
    f_t, _, logits = ref(x)
    (id_loss(logits, pids) + triplet(f_t, pids)).backward()

    net = build()
    ctx = RunContext(rank=rank, world_size=world)
    model = ctx.distribute(net)
    assert model is not net and isinstance(model, torch.nn.parallel.DistributedDataParallel)
    model.train()
    mine = slice(rank * 8, rank * 8 + 8)
    f_t, _, logits = model(x[mine])
    (id_loss(logits, pids[mine]) + triplet(*ctx.gather_batch(f_t, pids[mine]))).backward()
    for (name, a), b in zip(ref.named_parameters(), net.parameters()):
        if a.grad is None:
            assert b.grad is None, name
            continue
        err = float((a.grad - b.grad).abs().max() / a.grad.abs().max().clamp_min(1e-30))
        assert err < 1e-9, (name, err)
    for (name, a), b in zip(ref.named_buffers(), net.buffers()):
        assert torch.allclose(a.double(), b.double(), rtol=1e-10, atol=1e-12), name
    # in eval mode the layers are plain batch norm with the (global) running statistics
    net.eval()
    ref.eval()
    with torch.no_grad():
        assert torch.allclose(net(x)[1], ref(x)[1], rtol=1e-9, atol=1e-12)


def main() -> None:
    torch.set_num_threads(1)
    load_plugins()
    with distributed.process_group("cpu"):
        rank, world = dist.get_rank(), dist.get_world_size()
        assert world == 2 and distributed.is_main() == (rank == 0)
        check_gather_rows(rank, world)
        check_sampler(rank, world)
        check_gradients(rank, world)
        print(f"DDP-OK {rank}", flush=True)


if __name__ == "__main__":
    main()
