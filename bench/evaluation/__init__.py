"""Evaluation: every metric the harness reports, computed from a method's representations.

* :mod:`~bench.evaluation.rank`: CMC, mAP, mINP and MRR under the Market-1501 rules, exact and
  sort-free, from distances or straight from features; retrieval Recall@K;
* :mod:`~bench.evaluation.rules`: the ranking rules themselves (junk, same identity and camera);
* :mod:`~bench.evaluation.rerank`: k-reciprocal re-ranking (Zhong et al. 2017);
* :mod:`~bench.evaluation.verification`: AUROC and AUPR over query-gallery pairs;
* :mod:`~bench.evaluation.protocol`: the named protocols and the one entry point of a run;
* :mod:`~bench.evaluation.clips`: clip-level evaluation (mean-pooled frames);
* :mod:`~bench.evaluation.feature_file`: saved features (``bench eval``);
* :mod:`~bench.evaluation.inputs`, :mod:`~bench.evaluation.keys`,
  :mod:`~bench.evaluation.kernels`: input checks, ranking keys and tensor helpers they share.
"""

from bench.evaluation.rank import (
    METRICS,
    NoValidQueryError,
    RankMetrics,
    compute_distance,
    evaluate_features,
    evaluate_rank,
    retrieval_metrics,
)
from bench.evaluation.rerank import re_ranking, rerank_features
from bench.evaluation.verification import VerificationMetrics, verification_metrics

__all__ = [
    "METRICS",
    "NoValidQueryError",
    "RankMetrics",
    "VerificationMetrics",
    "compute_distance",
    "evaluate_features",
    "evaluate_rank",
    "re_ranking",
    "rerank_features",
    "retrieval_metrics",
    "verification_metrics",
]
