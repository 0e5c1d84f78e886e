"""Sweeps: a grid of runs (methods x presets x datasets x seeds x folds), resumable.

A sweep plans every run first (names, presets, ``--set`` keys and dataset roots are checked
before anything trains), generates or verifies each dataset once and fingerprints its files,
computes each run's identity hash (:func:`bench.engine.runner.fold_identity`: config and data
fingerprint, so a changed dataset folder is a new run) and skips the runs whose record with that
``config_hash`` already exists under ``DIR/runs/``; a killed sweep restarted with the same
command does only what is left (a run killed mid-training continues from its last epoch
checkpoint). A failing run is written to ``DIR/failed/`` with its error
(:func:`bench.results.records.write_failure`) and the others go on; running the sweep again
retries it.

The runs are fanned out by existing engines, not a scheduler of our own:

* ``local``: in this process one after another (``--max-parallel 1``, the default), or a
  ``concurrent.futures.ProcessPoolExecutor`` of N spawned processes, each run's output going
  to ``DIR/logs/``;
* ``ray``: one Ray task per run, asking for the run's ``resources.num_cpus`` and
  ``resources.num_gpus`` (config keys, ``--set``-able); every worker writes its record into the
  one results folder (shared storage on a cluster).

* :mod:`~bench.sweep.spec`: the grid and its options, from flags or a sweep file;
* :mod:`~bench.sweep.plan`: every run as a :class:`~bench.sweep.plan.Job`, checked up front;
* :mod:`~bench.sweep.executors`: running jobs locally, in processes or on Ray;
* :mod:`~bench.sweep.run`: :func:`~bench.sweep.run.run_sweep`, the driver;
* :mod:`~bench.sweep.summary`: the closing table.
"""
