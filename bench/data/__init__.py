"""Data: readers of the layouts real ReID datasets ship in, and what turns samples into batches.

* :mod:`~bench.data.market`: Market-1501 and DukeMTMC-reID folders, and the base of their
  adapters (:class:`~bench.data.market.MarketStyleRelease`);
* :mod:`~bench.data.cuhk03`: CUHK03 (CUHK03-NP folders, or ``cuhk-03.mat`` with the new
  protocol's split files);
* :mod:`~bench.data.colo_pair`: Colo-Pair (DMCL's polyp release: clips, text sheet, k folds);
* :mod:`~bench.data.captions`, :mod:`~bench.data.text_sources`: texts attached to samples
  (caption files, Market/Duke attribute sentences, CUHK-PEDES);
* :mod:`~bench.data.splits`: relabelling and k-fold splits by identity;
* :mod:`~bench.data.files`: reading annotation files with one clear error;
* :mod:`~bench.data.fingerprint`: the data fingerprint in every run's identity;
* :mod:`~bench.data.check`: ``bench data check`` and ``bench data info``;
* :mod:`~bench.data.synthetic`: procedural datasets written in the real layouts;
* :mod:`~bench.data.images`, :mod:`~bench.data.transforms`, :mod:`~bench.data.samplers`:
  image loading, augmentation and PK batches.

The dataset plugins (``datasets/``) are thin adapters over these readers.
"""
