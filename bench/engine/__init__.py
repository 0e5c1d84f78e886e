"""The engine: what runs a method under the protocol.

* :mod:`~bench.engine.runner`: ``bench run``: resolve, load, train, represent, evaluate, record;
* :mod:`~bench.engine.represent`: asking a trained method for query and gallery
  representations with the identities hidden;
* :mod:`~bench.engine.context`: the run context a method gets (checkpointed epochs, progress,
  seeds);
* :mod:`~bench.engine.training`: the loaders and epoch bookkeeping methods share;
* :mod:`~bench.engine.distributed`, :mod:`~bench.engine.amp`, :mod:`~bench.engine.devices`:
  DDP under ``torchrun``, CUDA mixed precision, ``--device``.
"""
