#!/usr/bin/env bash
# The measured NTSSL table of results/README.md: ntssl, its two baselines from the same parts
# (ntssl-infonce: one temporal positive, plain InfoNCE; ntssl-supcon: identity labels, the upper
# bound) and the untrained encoder (ntssl-untrained, the floor), preset quick, on
# synthetic-colonoscopy (default generation: seed 0, 8 training videos), seeds 0-2, the last epoch
# tested, every protocol of the tracklets protocol. Two runs at a time, one CPU thread each.
# Usage: bash benchmarks/ntssl_grid.sh [RESULTS_DIR]   (default /tmp/ntssl-grid)
set -eu
DIR=${1:-/tmp/ntssl-grid}
OUT=results/ntssl-quick-synthetic-colonoscopy
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1
bench sweep --methods ntssl,ntssl-infonce,ntssl-supcon,ntssl-untrained \
  --datasets synthetic-colonoscopy --presets quick --seeds 0,1,2 --max-parallel 2 --no-progress \
  --results-dir "$DIR"
# The same number of optimiser steps as ntssl (16 batches x 20 epochs = 320): an epoch of
# ntssl-infonce has 6 batches (bags of 2), one of ntssl-supcon 2 (each fragment once).
bench sweep --methods ntssl-infonce --datasets synthetic-colonoscopy --presets quick \
  --seeds 0,1,2 --set train.epochs=53 --max-parallel 2 --no-progress --results-dir "$DIR"
bench sweep --methods ntssl-supcon --datasets synthetic-colonoscopy --presets quick \
  --seeds 0,1,2 --set train.epochs=160 --max-parallel 2 --no-progress --results-dir "$DIR"
mkdir -p "$OUT"
bench leaderboard --results-dir "$DIR" --out "$OUT/leaderboard.md"
bench leaderboard --results-dir "$DIR" --format csv --out "$OUT/leaderboard.csv"
