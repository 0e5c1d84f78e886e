"""DMCL query-conditioned scoring (``dmcl.gallery_text=query``): batched vs the naive loop.

    OMP_NUM_THREADS=1 python benchmarks/dmcl_scoring.py                # 100 texts x 5000 gallery
    python benchmarks/dmcl_scoring.py --queries 20 --gallery 1000 --naive-sample 20

Both paths score the same untrained ``quick``-preset network on the same in-memory images
(random 64x64 tensors; timing does not depend on the weights or the pixels), so the figures
measure model compute, not image decoding:

* naive: one pass per query, as a direct reading of the released test loop: encode the query's
  text, encode all gallery images, fuse each with that text (:func:`naive_score`);
* batched: gallery image tokens once, each distinct query text once, (text, gallery) pairs fused
  ``--batch`` at a time (:func:`score_from_tokens`, what ``DMCL.score`` runs).

Wall-clock and process CPU seconds are both shown: on a shared machine the CPU time is the
steadier figure. The naive loop's cost is linear in the number of queries (nothing is shared);
``--naive-sample K`` times K of them and extrapolates to all, saying so in the table. The table
also reports the largest difference between the two score matrices (on the timed queries).
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch
from tabulate import tabulate

from bench.api.samples import Sample
from bench.config import resolve_config
from bench.engine.context import RunContext, seed_everything
from bench.plugins import get_method, load_plugins

COLOURS = ("reddish", "pale", "pink", "dark red")
SHAPES = ("sessile", "pedunculated", "flat")
SURFACES = ("smooth", "granular", "villous")
PLACES = ("cecum", "ascending colon", "transverse colon", "descending colon", "sigmoid colon")


def distinct_texts(n: int) -> list[str]:
    """``n`` distinct polyp descriptions in the synthetic dataset's vocabulary."""
    combos = itertools.product(COLOURS, SHAPES, SURFACES, PLACES, range(3, 21))
    return [
        f"A {c} {sh} polyp with a {su} surface, {mm} mm, in the {p}."
        for (c, sh, su, p, mm), _ in zip(combos, range(n))
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=100, help="distinct query texts (default 100)")
    ap.add_argument("--gallery", type=int, default=5000, help="gallery images (default 5000)")
    ap.add_argument("--batch", type=int, default=1024, help="sequences per fusion pass")
    ap.add_argument(
        "--naive-sample",
        type=int,
        default=None,
        metavar="K",
        help="time the naive loop on K queries and extrapolate (default: all queries)",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    load_plugins()
    from bench.plugins.methods.dmcl import naive_score, score_from_tokens

    seed_everything(args.seed)
    texts = distinct_texts(args.queries)
    if len(texts) < args.queries:
        ap.error(f"at most {len(texts)} distinct texts available")
    config, _ = resolve_config(get_method("dmcl"), [], "quick", {"dmcl.gallery_text": "query"})
    method = get_method("dmcl").family(config, RunContext(show_progress=False))
    train = [Sample(f"x{i}.jpg", i % 8, 0, text=t) for i, t in enumerate(texts)]
    net = method.build(8, train).eval()
    size = (3, config["input.height"], config["input.width"])
    q_img = torch.randn(args.queries, *size)
    g_img = torch.randn(args.gallery, *size)

    with torch.no_grad():
        t0, c0 = time.perf_counter(), time.process_time()
        chunks = range(0, args.gallery, args.batch)
        g_tok = torch.cat([net.image_tokens(g_img[s : s + args.batch]) for s in chunks])
        batched = score_from_tokens(net, net.image_tokens(q_img), texts, g_tok, args.batch)
        t_batched, c_batched = time.perf_counter() - t0, time.process_time() - c0

        k = args.queries if args.naive_sample is None else min(args.naive_sample, args.queries)
        t0, c0 = time.perf_counter(), time.process_time()
        naive = naive_score(net, q_img[:k], texts[:k], g_img, args.batch)
        t_naive_k, c_naive_k = time.perf_counter() - t0, time.process_time() - c0
    scale = args.queries / k
    t_naive, c_naive = t_naive_k * scale, c_naive_k * scale
    diff = (naive - batched[:k]).abs().max().item()
    extrapolated = k < args.queries
    ext = " (extrapolated)" if extrapolated else ""
    rows = [
        [
            "naive loop (one pass per query)",
            f"{k}" + (f" of {args.queries}" if extrapolated else ""),
            f"{t_naive_k:.1f}",
            f"{t_naive:.1f}{ext}",
            f"{c_naive:.1f}{ext}",
        ],
        [
            "batched (DMCL.score)",
            f"{args.queries}",
            f"{t_batched:.1f}",
            f"{t_batched:.1f}",
            f"{c_batched:.1f}",
        ],
        [
            "ratio naive / batched",
            "",
            "",
            f"{t_naive / t_batched:.1f}x",
            f"{c_naive / c_batched:.1f}x",
        ],
    ]
    print(
        f"DMCL quick, {args.queries} distinct query texts x {args.gallery} gallery images, "
        f"{config['input.height']}x{config['input.width']}, torch threads "
        f"{torch.get_num_threads()}, fusion batch {args.batch}"
    )
    print(
        tabulate(
            rows,
            headers=[
                "path",
                "queries timed",
                "wall s (timed)",
                f"wall s, {args.queries} queries",
                f"CPU s, {args.queries} queries",
            ],
            tablefmt="github",
        )
    )
    print(f"max |naive - batched| over the timed queries: {diff:.2e}")
    same = torch.allclose(naive, batched[:k], atol=1e-4, rtol=1e-4)
    print("scores equal (atol 1e-4):", "yes" if same else "NO")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
