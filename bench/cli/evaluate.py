"""``bench eval``: evaluate saved query/gallery features without training."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.cli.options import add_device, positive_int


def add_parser(sub: Any) -> None:
    ev = sub.add_parser(
        "eval",
        help="evaluate saved query/gallery features (.npz) without training",
        description="Evaluate saved features under the Market-1501 rules, as bench run does. "
        "FILE is an .npz with query_features (Q x D), gallery_features (G x D), query_pids, "
        "gallery_pids, query_camids, gallery_camids (integers) and optionally metric "
        "(euclidean, the default, or cosine).",
    )
    ev.set_defaults(handler=main)
    ev.add_argument("--features", required=True, type=Path, metavar="FILE", help="the .npz file")
    ev.add_argument(
        "--rerank", action="store_true", help="k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)"
    )
    ev.add_argument(
        "--max-rank", type=positive_int, default=50, help="length of the CMC curve (default 50)"
    )
    add_device(ev)
    ev.add_argument(
        "--json", action="store_true", help="print one JSON object (mAP, mINP, cmc, ...)"
    )


def main(args: argparse.Namespace) -> int:
    from bench.engine.devices import resolve_device
    from bench.evaluation.feature_file import load_features
    from bench.evaluation.protocol import evaluate_labels, get_protocol

    device = resolve_device(args.device)
    f = load_features(args.features)
    t0 = time.perf_counter()
    metrics = evaluate_labels(
        get_protocol("market"),
        f.query_pids,
        f.query_camids,
        f.gallery_pids,
        f.gallery_camids,
        query_features=f.query_features,
        gallery_features=f.gallery_features,
        metric=f.metric,
        max_rank=args.max_rank,
        rerank=args.rerank,
        device=device,
    )
    seconds = time.perf_counter() - t0
    d = metrics.as_dict()
    if args.json:
        out = {k: d[k] for k in ("mAP", "mINP", "MRR", "cmc", "num_valid_queries", "num_queries")}
        print(json.dumps({**out, "metric": f.metric, "rerank": args.rerank}))
        return 0
    from tabulate import tabulate

    row = [100 * d["mAP"], 100 * d["rank1"], 100 * d["rank5"], 100 * d["rank10"]]
    print(
        tabulate(
            [[*row, 100 * d["mINP"], 100 * d["MRR"]]],
            headers=["mAP", "Rank-1", "Rank-5", "Rank-10", "mINP", "MRR"],
            tablefmt="github",
            floatfmt=".2f",
        )
    )
    print(
        f"{d['num_valid_queries']} of {d['num_queries']} queries valid; {len(f.gallery_pids)} "
        f"gallery; {f.metric}{' + re-ranking' if args.rerank else ''}; {seconds:.2f} s on {device}",
        file=sys.stderr,
    )
    return 0
