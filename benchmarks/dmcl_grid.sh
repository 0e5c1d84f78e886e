#!/usr/bin/env bash
# The measured DMCL grid of results/README.md: dmcl, its Table 3 ablations and bot, preset quick,
# on synthetic-polyp, every fold (4) x seeds 0-2, under the fair protocol (the gallery's
# identity-level text withheld); then one oracle row: dmcl with each gallery image fused with its
# own text (protocol.oracle_gallery_text=true), marked "(oracle)" and unranked. Two runs at a
# time, one CPU thread each (bench sweep --max-parallel 2 gives each run cores / 2 threads).
# Usage: bash benchmarks/dmcl_grid.sh [RESULTS_DIR]   (default /tmp/dmcl-grid)
set -eu
DIR=${1:-/tmp/dmcl-grid}
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1
bench sweep --methods dmcl,dmcl-no-text,dmcl-no-image,dmcl-baseline,bot \
  --datasets synthetic-polyp --presets quick --seeds 0,1,2 --max-parallel 2 --no-progress \
  --results-dir "$DIR"
bench sweep --methods dmcl --datasets synthetic-polyp --presets quick --seeds 0,1,2 \
  --set dmcl.gallery_text=own --set protocol.oracle_gallery_text=true \
  --max-parallel 2 --no-progress --results-dir "$DIR"
bench leaderboard --results-dir "$DIR" --out results/dmcl-quick-synthetic-polyp/leaderboard.md
bench leaderboard --results-dir "$DIR" --format csv \
  --out results/dmcl-quick-synthetic-polyp/leaderboard.csv
