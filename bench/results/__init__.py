"""Results: what runs leave on disk and what is made of it.

* :mod:`~bench.results.records`: run records and failure records (one JSON file each);
* :mod:`~bench.results.provenance`: commit, versions and hardware of a run;
* :mod:`~bench.results.artifacts`: the query/gallery features a run keeps for its report;
* :mod:`~bench.results.leaderboard`: the tables (mean ± std over seeds and folds);
* :mod:`~bench.results.reported`: the numbers papers report, as plain data.
"""
