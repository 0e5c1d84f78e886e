"""The engine: what runs a method under the protocol.

* :mod:`~bench.engine.runner`: ``bench run``: resolve, load, train, represent, evaluate, record;
* :mod:`~bench.engine.test_side`: the view of the test side a method is given (shuffled order,
  hidden pids, opaque paths and clip ids, the text policy);
* :mod:`~bench.engine.represent`, :mod:`~bench.engine.measure`: asking a trained method for
  query and gallery representations through that view, and measuring a split with them;
* :mod:`~bench.engine.selection`: validation identities and ``train.select``;
* :mod:`~bench.engine.context`: the run context a method gets (checkpointed epochs, progress,
  seeds);
* :mod:`~bench.engine.training`: the loaders and epoch bookkeeping methods share;
* :mod:`~bench.engine.distributed`, :mod:`~bench.engine.amp`, :mod:`~bench.engine.devices`:
  DDP under ``torchrun``, CUDA mixed precision, ``--device``.
"""
