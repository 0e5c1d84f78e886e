#!/usr/bin/env bash
# The measured DMCL grid of results/README.md: dmcl, its Table 3 ablations and bot, preset quick,
# on synthetic-polyp, every fold (4), seeds 0-2; two streams of one CPU thread each.
# Usage: bash benchmarks/dmcl_grid.sh [RESULTS_DIR]   (default results/dmcl-quick-synthetic-polyp)
set -u
DIR=${1:-results/dmcl-quick-synthetic-polyp}
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1
run() {  # method...
  for seed in 0 1 2; do
    for method in "$@"; do
      bench run --method "$method" --dataset synthetic-polyp --preset quick --seed "$seed" \
        --no-progress --results-dir "$DIR" > "$DIR/logs/$method-s$seed.log" 2>&1 \
        || echo "FAILED: $method seed $seed (see $DIR/logs/$method-s$seed.log)"
    done
  done
}
mkdir -p "$DIR/logs"
run dmcl dmcl-no-text &
run dmcl-baseline dmcl-no-image bot &
wait
bench leaderboard --results-dir "$DIR"
