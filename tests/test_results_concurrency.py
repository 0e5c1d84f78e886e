"""Many processes writing run and failure records at once, while ``bench leaderboard`` reads."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings

from bench.cli import main
from bench.results.records import read_failures, read_records, runs_dir

WRITERS, PER_WRITER, PAYLOAD = 4, 25, 50_000

WRITER = r"""
import sys
from bench.results.records import clear_failure, write_failure, write_record

results, w, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for i in range(n):
    key = f"{w:02d}{i:014d}"
    write_failure(results, {"method": f"m{w}", "dataset": "synthetic-person", "seed": i,
                            "config_hash": key, "error": "RuntimeError: first try"})
    write_record(results, {
        "run_id": f"w{w}-{i:03d}", "method": f"m{w}", "dataset": "synthetic-person",
        "seed": i, "fold": None, "preset": "quick", "config_hash": key,
        "metrics": {"mAP": (w + 1) / 10, "rank1": 0.5, "rank5": 0.7, "rank10": 0.8,
                    "mINP": 0.2},
        "payload": "p" * size,
    })
    if i % 2:
        clear_failure(results, key)  # the retry of every other run succeeded
"""


def test_parallel_writer_processes_and_a_reading_leaderboard(tmp_path, subprocess_env, capsys):
    results = tmp_path / "results"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(results), str(w), str(PER_WRITER), str(PAYLOAD)],
            env=subprocess_env,
        )
        for w in range(WRITERS)
    ]
    reads = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a torn record would be a warning, here an error
        while any(p.poll() is None for p in writers):
            if any(runs_dir(results).glob("*.json")):
                assert main(["leaderboard", "--results-dir", str(results)]) == 0
                read_failures(results)
                reads += 1
            else:
                time.sleep(0.01)
    assert [p.wait() for p in writers] == [0] * WRITERS
    capsys.readouterr()
    print(f"{reads} leaderboard reads while {WRITERS} processes wrote")
    assert reads > 0
    records = read_records(results)
    assert len(records) == WRITERS * PER_WRITER
    for r in records:  # every record whole
        assert r["payload"] == "p" * PAYLOAD
        assert r["run_id"] == f"w{r['method'][1:]}-{r['seed']:03d}"
    assert not [p for p in runs_dir(results).iterdir() if not p.name.endswith(".json")]
    failures = read_failures(results)
    assert len(failures) == WRITERS * ((PER_WRITER + 1) // 2)  # the even seeds
    assert all(f["seed"] % 2 == 0 and f["status"] == "failed" for f in failures)
    assert main(["leaderboard", "--results-dir", str(results)]) == 0
    table = capsys.readouterr().out
    assert all(f"m{w}" in table for w in range(WRITERS)) and f"|  {PER_WRITER} |" in table
    json.loads(json.dumps(records))  # plain JSON all the way
