"""Evaluation benchmark: reid-bench's evaluator against torchreid and fast-reid, side by side.

    python benchmarks/eval_bench.py                 # everything, the README's tables (slow)
    python benchmarks/eval_bench.py --quick         # small sizes, a minute or two
    python benchmarks/eval_bench.py --sections market,scaling --device cuda

Sections (markdown tables on stdout):

* ``market``: Market-1501 scale (3,368 x 15,913, 2,048-d float32, 751 ids, 6 cameras, 2,793
  distractors). Peer pipeline: distance by matmul (torchreid's ``compute_distance_matrix``) then
  fast-reid's Cython ``evaluate_cy``; ours: ``evaluate_features`` end to end. Exactness: ours on the
  peer's distance matrix against fast-reid's Cython and (``--python-peers``) torchreid's and
  fast-reid's Python evaluators. Two feature kinds: ``clustered`` (identity structure, mAP of a
  trained model) and ``random`` (Gaussian, every true match deep: the worst case for ours).
* ``scaling``: time and peak memory beyond the features, per gallery size at MSMT17's query count
  (11,659 x 2,048), each size in a fresh subprocess (peak RSS via /proc's VmHWM; CUDA: the
  allocator's peak).
* ``rerank``: k-reciprocal re-ranking, ours against torchreid's ``re_ranking`` on the same three
  distance matrices.

Peers come from ``benchmarks/peers.txt`` (see ``benchmarks/peers.py``); missing ones are reported
and skipped. Timings are the best of ``--repeat`` runs; the machine may be shared, so compare the
ratios measured in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import subprocess
import sys
import time
from datetime import date
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers

from bench.evaluation import compute_distance, evaluate_features, evaluate_rank
from bench.evaluation.rerank import re_ranking, rerank_features

MARKET = {"num_q": 3368, "num_g": 15913, "ids": 751, "cams": 6, "distractors": 2793}
MSMT_Q, MSMT_G, MSMT_IDS, MSMT_CAMS = 11659, 82161, 3060, 15
DIM = 2048
NOISE = 2.7  # feature noise of the clustered kind: mAP of a trained model at Market scale


# --------------------------------------------------------------------------------------------
# Synthetic features
# --------------------------------------------------------------------------------------------


def synthetic(
    num_q: int,
    num_g: int,
    ids: int,
    cams: int,
    distractors: int,
    kind: str,
    seed: int = 0,
    dim: int = DIM,
) -> dict:
    """Query/gallery features and labels, generated in chunks (few temporaries).

    ``clustered``: ``centre[pid] + 0.4 * camera[cam] + NOISE * noise``, distractors (pid 0) each
    around their own random centre; ``random``: Gaussian noise only.
    """
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    q_pids = rng.integers(1, ids + 1, num_q)
    g_pids = np.concatenate([rng.integers(1, ids + 1, num_g - distractors), np.zeros(distractors)])
    g_pids = rng.permutation(g_pids).astype(np.int64)
    q_cams, g_cams = rng.integers(0, cams, num_q), rng.integers(0, cams, num_g)
    centres = torch.randn(ids + 1, dim, generator=gen)
    cam_bias = torch.randn(cams, dim, generator=gen)

    def make(pids: np.ndarray, cams_: np.ndarray) -> torch.Tensor:
        out = torch.empty(len(pids), dim)
        for s in range(0, len(pids), 4096):
            chunk = out[s : s + 4096]
            torch.randn(chunk.shape, generator=gen, out=chunk)
            if kind == "clustered":
                p = torch.from_numpy(pids[s : s + 4096])
                chunk.mul_(NOISE).add_(centres[p]).add_(
                    cam_bias[torch.from_numpy(cams_[s : s + 4096])], alpha=0.4
                )
                zero = p == 0
                if bool(zero.any()):
                    chunk[zero] += torch.randn(int(zero.sum()), dim, generator=gen)
                    chunk[zero] -= centres[0]
        return out

    return {
        "q": make(q_pids, q_cams),
        "g": make(g_pids, g_cams),
        "q_pids": q_pids,
        "g_pids": g_pids,
        "q_cams": q_cams,
        "g_cams": g_cams,
    }


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def best_of(repeat: int, fn, sync: torch.device | None = None):
    best, out = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        if sync is not None and sync.type == "cuda":
            torch.cuda.synchronize(sync)
        t = time.perf_counter()
        out = fn()
        if sync is not None and sync.type == "cuda":
            torch.cuda.synchronize(sync)
        best = min(best, time.perf_counter() - t)
    return best, out


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measured(fn, device: torch.device):
    """(seconds, result, peak MB beyond what was resident before) of one call."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        reset_peak_rss()
        base = rss_mb()
    seconds, out = best_of(1, fn, device)
    if device.type == "cuda":
        extra = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    else:
        extra = peak_rss_mb() - base
    return seconds, out, extra


def exact_row(kind: str, against: str, got, cmc, m_ap, m_inp, seconds: float) -> dict:
    """One row of the exactness table: ours (``got``) against a peer's CMC and per-query (or
    mean) AP and INP."""
    return {
        "features": kind,
        "against": against,
        "|ΔmAP|": abs(got.mAP - float(np.mean(m_ap))),
        "|ΔmINP|": abs(got.mINP - float(np.mean(m_inp))),
        "max |ΔCMC|": max_abs_diff(got.cmc, cmc),
        "peer s": seconds,
    }


def max_abs_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n = min(len(a), len(b))
    return float(np.abs(a[:n] - b[:n]).max())


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def section_market(args: argparse.Namespace, device: torch.device) -> None:
    scale = dict(MARKET)
    if args.quick:
        scale.update(num_q=600, num_g=3000, distractors=500)
    tr_dist, tr_rank, fr_rank = peers.torchreid_distance(), peers.torchreid_rank(), None
    fr_cy, why = peers.fastreid_cython()
    if args.python_peers != "none":
        fr_rank = peers.fastreid_rank()
    print(
        f"\n### Market-1501 scale: {scale['num_q']:,} x {scale['num_g']:,}, {DIM}-d float32, "
        f"{scale['ids']} ids, {scale['cams']} cameras, {scale['distractors']:,} distractors\n"
    )
    print(f"fast-reid Cython evaluator: {why}")
    rows, exact_rows = [], []
    for kind in ("clustered", "random"):
        data = synthetic(**scale, kind=kind)
        labels = (data["q_pids"], data["g_pids"], data["q_cams"], data["g_cams"])
        q, g = data["q"].to(device), data["g"].to(device)
        t_ours, ours = best_of(
            args.repeat,
            lambda q=q, g=g, labels=labels: evaluate_features(
                q, g, *labels, metric="euclidean", device=device
            ),
            device,
        )
        row = {"features": kind, "mAP %": 100 * ours.mAP, "ours s": t_ours}
        if tr_dist is not None and fr_cy is not None:
            qc, gc_ = data["q"], data["g"]
            t_dist, dist = best_of(
                args.repeat,
                partial(tr_dist.compute_distance_matrix, qc, gc_, "euclidean"),
            )
            dist = dist.numpy()
            t_cy, (cmc, all_ap, all_inp) = best_of(
                args.repeat, partial(fr_cy.evaluate_cy, dist, *labels, 50, False)
            )
            row.update(
                {
                    "peer distance s": t_dist,
                    "fast-reid Cython s": t_cy,
                    "peer total s": t_dist + t_cy,
                    "speed-up": (t_dist + t_cy) / t_ours,
                }
            )
            t_rank, on_peer = best_of(args.repeat, partial(evaluate_rank, dist, *labels))
            row["ours on peer distmat s"] = t_rank
            exact_rows.append(
                exact_row(kind, "fast-reid Cython", on_peer, cmc, all_ap, all_inp, t_cy)
            )
            with peers.stable_argsort(fr_cy):
                cmc_s, ap_s, inp_s = fr_cy.evaluate_cy(dist, *labels, 50, False)
            against = "fast-reid Cython, stable argsort (ties by gallery index, as ours)"
            exact_rows.append(exact_row(kind, against, on_peer, cmc_s, ap_s, inp_s, float("nan")))
            against = "peer pipeline, ours from features (float rounding of distances)"
            exact_rows.append(exact_row(kind, against, ours, cmc, all_ap, all_inp, t_dist + t_cy))
            run_python = args.python_peers == "all" or (
                args.python_peers == "clustered" and kind == "clustered"
            )
            if run_python and tr_rank is not None:
                t_py, (cmc_py, m_ap_py) = best_of(
                    1, partial(tr_rank.eval_market1501, dist, *labels, 50)
                )
                against = "torchreid Python (no mINP)"
                exact_rows.append(
                    exact_row(kind, against, on_peer, cmc_py, m_ap_py, float("nan"), t_py)
                )
            if run_python and fr_rank is not None:
                t_py, (cmc_py, ap_py, inp_py) = best_of(
                    1, partial(fr_rank.eval_market1501, dist, *labels, 50)
                )
                exact_rows.append(
                    exact_row(kind, "fast-reid Python", on_peer, cmc_py, ap_py, inp_py, t_py)
                )
            del dist
        rows.append(row)
        del data, q, g
    print()
    print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".2f"))
    if exact_rows:
        print("\nExactness: ours evaluating the peer's distance matrix, and the peer's own time:\n")
        print(tabulate(exact_rows, headers="keys", tablefmt="github", floatfmt=".2e"))


def child_scaling(args: argparse.Namespace, device: torch.device) -> None:
    """One size, in its own process: time and peak memory beyond the features."""
    num_g = args.child_gallery
    data = synthetic(args.num_q, num_g, MSMT_IDS, MSMT_CAMS, num_g // 10, "clustered", seed=1)
    labels = (data["q_pids"], data["g_pids"], data["q_cams"], data["g_cams"])
    q, g = data["q"].to(device), data["g"].to(device)
    del data
    feats_mb = (q.numel() + g.numel()) * 4 / 2**20
    seconds, m, extra = measured(
        lambda: evaluate_features(q, g, *labels, metric="euclidean", device=device), device
    )
    print(
        json.dumps({"seconds": seconds, "extra_mb": extra, "features_mb": feats_mb, "mAP": m.mAP})
    )


def section_scaling(args: argparse.Namespace, device: torch.device) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"\n### Growth with the gallery: {args.num_q:,} queries x G, {DIM}-d float32 "
        f"(MSMT17: {MSMT_Q:,} x {MSMT_G:,}); each size in a fresh process\n"
    )
    rows = []
    for num_g in sizes:
        cmd = [
            sys.executable,
            __file__,
            "--child-gallery",
            str(num_g),
            "--num-q",
            str(args.num_q),
            "--device",
            str(device),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"G={num_g}: failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        dense = args.num_q * num_g * (4 + 8) / 2**20
        rows.append(
            {
                "gallery G": num_g,
                "seconds": r["seconds"],
                "µs per query x 1k gallery": r["seconds"] / (args.num_q * num_g) * 1e9,
                "peak MB beyond features": r["extra_mb"],
                "features MB": r["features_mb"],
                "dense float32 distmat + int64 argsort MB": dense,
                "mAP %": 100 * r["mAP"],
            }
        )
        print(f"  G={num_g}: {r['seconds']:.2f} s, {r['extra_mb']:.0f} MB", file=sys.stderr)
    print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".2f"))
    if len(rows) >= 3:
        g = np.array([r["gallery G"] for r in rows], dtype=float)
        t = np.array([r["seconds"] for r in rows])
        slope, intercept = np.polyfit(g, t, 1)
        pred = slope * g + intercept
        r2 = 1 - ((t - pred) ** 2).sum() / ((t - t.mean()) ** 2).sum()
        mem = [r["peak MB beyond features"] for r in rows]
        dense_mb = rows[-1]["dense float32 distmat + int64 argsort MB"]
        print(
            f"\nLinear fit of time on G: {slope * 1000:.3f} s per 1k gallery entries + "
            f"{intercept:.2f} s, R² = {r2:.4f}. Peak memory beyond the features: "
            f"{min(mem):.0f} to {max(mem):.0f} MB (query blocks of about 2**24 entries, per-row "
            f"histograms, gallery labels), against {dense_mb:.0f} MB for a dense distance "
            "matrix and its argsort at the largest G."
        )


def neighbour_ties(mats: list[np.ndarray], cuts: tuple[int, ...] = (6, 11, 21)) -> int:
    """Rows whose sorted normalised distances tie across a neighbour cut-off."""
    qg, qq, gg = (torch.from_numpy(m) for m in mats)
    num_q = qg.shape[0]
    count = 0
    for cols, src in ((range(num_q), (qq, qg, 0)), (range(num_q, num_q + gg.shape[0]), None)):
        step = 512
        for s in range(cols.start, cols.stop, step):
            e = min(s + step, cols.stop)
            if src is not None:
                a = torch.cat([qq[:, s:e].T, qg[s:e]], dim=1)
            else:
                a = torch.cat([qg[:, s - num_q : e - num_q].T, gg[:, s - num_q : e - num_q].T], 1)
            a = a.pow(2).float()
            od = a / a.amax(1, keepdim=True)
            top = torch.topk(od, max(cuts) + 1, dim=1, largest=False, sorted=True).values
            tie = torch.zeros(len(top), dtype=torch.bool)
            for c in cuts:
                tie |= top[:, c - 1] == top[:, c]
            count += int(tie.sum())
    return count


def _rerank_row(name: str, seconds: float, extra_mb: float, reranked, labels) -> dict:
    m = evaluate_rank(reranked, *labels)
    return {
        "": name,
        "seconds": seconds,
        "mAP %": 100 * m.mAP,
        "Rank-1 %": 100 * m.rank(1),
        "peak MB beyond inputs": extra_mb,
    }


def section_rerank(args: argparse.Namespace, device: torch.device) -> None:
    scale = dict(MARKET)
    if args.quick or args.rerank_small:
        scale.update(num_q=500, num_g=2500, distractors=400)
    data = synthetic(**scale, kind="clustered", seed=2)
    labels = (data["q_pids"], data["g_pids"], data["q_cams"], data["g_cams"])
    q, g = data["q"], data["g"]
    print(
        f"\n### k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3): {scale['num_q']:,} x "
        f"{scale['num_g']:,}, {DIM}-d, Euclidean\n"
    )
    t0 = time.perf_counter()
    mats = [compute_distance(a, b, "euclidean").numpy() for a, b in ((q, g), (q, q), (g, g))]
    t_mats = time.perf_counter() - t0
    plain = evaluate_rank(mats[0], *labels)
    rows = [
        {
            "": "no re-ranking",
            "seconds": float("nan"),
            "mAP %": 100 * plain.mAP,
            "Rank-1 %": 100 * plain.rank(1),
        }
    ]
    t_feat, from_feat, extra_feat = measured(
        lambda: rerank_features(q.to(device), g.to(device), "euclidean", device=device).cpu(),
        device,
    )
    rows.append(
        _rerank_row("ours from features (rerank_features)", t_feat, extra_feat, from_feat, labels)
    )
    mats_dev = [torch.from_numpy(m).to(device) for m in mats]
    t_ours, ours, extra = measured(lambda: re_ranking(*mats_dev, device=device).cpu(), device)
    rows.append(_rerank_row("ours from the 3 matrices (re_ranking)", t_ours, extra, ours, labels))
    ours = ours.numpy()
    notes = [
        f"The three distance matrices by matmul (compute_distance) took {t_mats:.2f} s; "
        f"`rerank_features` needs none of them.",
        f"ours from features vs ours from matrices: max |diff| "
        f"{float(np.abs(from_feat.numpy() - ours).max()):.2e}",
    ]
    cpu = torch.device("cpu")
    ref = peers.torchreid_rerank()
    for stable in (False, True):
        if ref is None or args.no_rerank_reference:
            break
        what = "stable argsort" if stable else "as released"
        with peers.stable_argsort(ref) if stable else contextlib.nullcontext():
            t_ref, want, extra_ref = measured(lambda: ref.re_ranking(*mats), cpu)
        rows.append(
            _rerank_row(
                f"torchreid {peers.version('torchreid')} re_ranking ({what})",
                t_ref,
                extra_ref,
                want,
                labels,
            )
        )
        diff = np.abs(ours - want).max(axis=1)
        notes.append(
            f"torchreid {what}: max |ours - torchreid| = {diff.max():.2e}, query rows differing by "
            f"more than 1e-5: {int((diff > 1e-5).sum())} of {len(diff)}; speed-up "
            f"{t_ref / t_ours:.1f}x on the same matrices, {(t_mats + t_ref) / t_feat:.1f}x end to "
            "end from features (matmul distances + torchreid vs rerank_features)"
        )
        if not stable:
            notes.append(
                "rows of the (Q+G)^2 matrix with an exact float32 tie across a neighbour cut-off "
                "(k2=6, k1/2+1=11, k1+1=21), which numpy's default (unstable) argsort orders "
                f"arbitrarily and ours by index: {neighbour_ties(mats)}"
            )
        del want
    print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".2f"))
    print()
    for note in notes:
        print(f"- {note}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--quick", action="store_true", help="small sizes (a minute or two)")
    p.add_argument("--sections", default="market,scaling,rerank", help="comma-separated")
    p.add_argument("--repeat", type=int, default=2, help="best of N timings (default 2)")
    p.add_argument(
        "--sizes",
        default=None,
        help="gallery sizes, scaling section (default 1000..82161; --quick: 1000,4000,16000)",
    )
    p.add_argument(
        "--num-q", type=int, default=None, help=f"queries for scaling (default {MSMT_Q})"
    )
    p.add_argument(
        "--python-peers",
        choices=["none", "clustered", "all"],
        default="clustered",
        help="run torchreid's and fast-reid's Python evaluators (slow) for these features",
    )
    p.add_argument("--rerank-small", action="store_true", help="re-ranking at 500 x 2,500")
    p.add_argument(
        "--no-rerank-reference",
        action="store_true",
        help="skip torchreid's re_ranking (slow: run twice, as released and with a stable argsort)",
    )
    p.add_argument("--child-gallery", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: torch sees no CUDA device")
    if args.num_q is None:
        args.num_q = 2000 if args.quick else MSMT_Q
    if args.sizes is None:
        args.sizes = "1000,4000,16000" if args.quick else "1000,2000,5000,10000,20000,41080,82161"
    if args.child_gallery is not None:
        child_scaling(args, device)
        return 0
    print(f"## Evaluation benchmark, {date.today().isoformat()}\n")
    print(f"- device: {device} ({device_name(device)})")
    print(
        f"- torch {torch.__version__}, numpy {np.__version__}, python {platform.python_version()}"
    )
    print(
        f"- peers: torchreid {peers.version('torchreid') or 'not installed'}, "
        f"fastreid {peers.version('fastreid') or 'not installed'}"
    )
    for section in args.sections.split(","):
        {"market": section_market, "scaling": section_scaling, "rerank": section_rerank}[
            section.strip()
        ](args, device)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
