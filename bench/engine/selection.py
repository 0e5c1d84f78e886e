"""Model selection without test data: a validation split carved from the training identities.

``protocol.val_identities`` (a fraction below 1, or a count; default 0: none) holds that many
training identities out of training (:func:`carve_validation`), with a query and a gallery built
like the test split's: for the ``colo-pair`` protocol the first screening (camid 0) is the query
and the second the gallery; otherwise each identity gives one query image per camera (drawn by
the seed) and the rest are gallery. After every ``protocol.val_every``-th epoch (and the last)
the harness measures the method on it exactly as it measures the test split
(:func:`bench.engine.measure.measure`), without touching the training RNGs.
``train.select=last`` tests the last epoch; ``best-val`` the epoch with the best validation mAP
(the earliest on ties), restored from ``best.pt``. The test split is measured once, at the end.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from bench.api.method import Method
from bench.api.samples import Sample, Splits
from bench.data.splits import relabel
from bench.engine import distributed
from bench.engine.checkpoints import atomic_torch_save, load_checkpoint
from bench.engine.context import RunContext, rng_state, set_rng_state
from bench.engine.measure import measure
from bench.errors import ConfigError
from bench.evaluation.protocol import Protocol

#: The validation metrics kept per validated epoch (fractions, as in ``metrics``).


def validation_count(amount: float, num_ids: int) -> int:
    """How many of ``num_ids`` training identities ``protocol.val_identities`` holds out."""
    if amount < 0:
        raise ConfigError(f"protocol.val_identities must be at least 0, got {amount:g}")
    if amount == 0:
        return 0
    if amount < 1:
        count = round(amount * num_ids)
    elif float(amount).is_integer():
        count = int(amount)
    else:
        raise ConfigError(
            f"protocol.val_identities is a fraction below 1 or a whole count, got {amount:g}"
        )
    if count < 2 or num_ids - count < 2:
        raise ConfigError(
            f"protocol.val_identities={amount:g} holds out {count} of {num_ids} training "
            "identities; validation and training each need at least 2"
        )
    return count


def carve_validation(
    train: Sequence[Sample], amount: float, seed: int, protocol: str
) -> tuple[list[Sample], Splits | None]:
    """``(train without the validation identities, relabelled 0..N-1; the validation split)``;
    ``(train, None)`` when ``amount`` is 0. The identities are drawn by ``seed``. The split
    follows the test ``protocol``: Colo-Pair's screenings, all tracklets against all for
    ``tracklets``, else one query image per identity and camera."""
    pids = sorted({s.pid for s in train})
    count = validation_count(float(amount), len(pids))
    if count == 0:
        return list(train), None
    rng = random.Random(f"reid-bench validation {seed}")
    held = set(rng.sample(pids, count))
    rest = relabel([s for s in train if s.pid not in held])
    val = [s for s in train if s.pid in held]
    if protocol == "colo-pair":
        query = [s for s in val if s.camid == 0]
        gallery = [s for s in val if s.camid != 0]
    elif protocol == "tracklets":  # every held-out tracklet against every other
        query = gallery = val
    else:
        by_view: dict[tuple[int, int], list[Sample]] = {}
        for s in val:
            by_view.setdefault((s.pid, s.camid), []).append(s)
        picked = {id(rng.choice(group)) for _, group in sorted(by_view.items())}
        query = [s for s in val if id(s) in picked]
        gallery = [s for s in val if id(s) not in picked]
    return rest, Splits([], query, gallery, meta={"identities": count})


class Validator:
    """The ``ctx.on_epoch_end`` hook of a run with a validation split: measures it, logs
    ``val_mAP``/``val_rank1`` into the epoch history and keeps the best epoch's state."""

    def __init__(
        self,
        method: Method,
        val: Splits,
        *,
        ctx: RunContext,
        protocol: Protocol,
        config: Mapping[str, Any],
    ) -> None:
        self.method, self.val, self.ctx = method, val, ctx
        self.protocol, self.config = protocol, config
        # mAP and the protocol's second figure (Rank-1, or HR@1 for tracklets)
        self.val_keys = tuple(key for key, _ in protocol.columns[:2])
        self.num_epochs: int | None = None  # from ctx.epochs(), at the first epoch's end
        self.every = int(config["protocol.val_every"])
        if self.every < 1:
            raise ConfigError(f"protocol.val_every must be at least 1, got {self.every}")
        self.select = str(config["train.select"])
        self.best: tuple[float, int] | None = None  # (val mAP, epoch)

    @property
    def best_path(self) -> Path | None:
        folder = self.ctx.checkpoint_dir
        return None if folder is None else folder / "best.pt"

    def _resume(self) -> None:
        """After ``--resume``: the best epoch so far, from the restored history."""
        for entry in self.ctx.history:
            if "val_mAP" in entry:
                self._consider(float(entry["val_mAP"]), int(entry["epoch"]))

    def _consider(self, value: float, epoch: int) -> bool:
        if self.best is None or value > self.best[0]:
            self.best = (value, epoch)
            return True
        return False

    def __call__(self, epoch: int, num_epochs: int) -> None:
        self.num_epochs = num_epochs
        if self.best is None and self.ctx.resumed_from is not None:
            self._resume()
        if (epoch + 1) % self.every and epoch != num_epochs - 1:
            return
        state = rng_state()  # measuring must not change what training draws next
        measured = measure(
            self.method,
            self.val.query,
            self.val.gallery,
            protocol=self.protocol,
            config=self.config,
            seed=self.ctx.seed,
            device=self.ctx.device,
            score=self.ctx.is_main,
        )
        set_rng_state(state)
        better = False
        if measured.metrics is not None:
            scores = measured.metrics.as_dict()
            second, title = self.protocol.columns[1]
            values = {f"val_{k}": float(scores[k]) for k in self.val_keys}
            if self.ctx.history and self.ctx.history[-1].get("epoch") == epoch:
                self.ctx.history[-1].update(values)
            else:
                self.ctx.history.append({"epoch": epoch, **values})
            better = self._consider(values["val_mAP"], epoch)
            tqdm.write(
                f"epoch {epoch + 1}: validation mAP {100 * values['val_mAP']:.1f}  "
                f"{title} {100 * values[f'val_{second}']:.1f}"
            )
        if self.select == "best-val" and better and self.best_path is not None:
            atomic_torch_save(self.method.state_dict(), self.best_path)
        if self.ctx.world_size > 1:
            distributed.barrier()

    def finish(self) -> dict[str, Any]:
        """Restore the selected epoch's state (``best-val``) and say what was selected."""
        history = [
            {"epoch": int(h["epoch"]) + 1, **{k: h[f"val_{k}"] for k in self.val_keys}}
            for h in self.ctx.history
            if "val_mAP" in h
        ]
        if self.best is None and history:  # e.g. a rank other than 0, or an unlogged resume
            top = max(history, key=lambda h: (h["mAP"], -h["epoch"]))
            self.best = (float(top["mAP"]), int(top["epoch"]) - 1)
        if self.ctx.world_size > 1:  # only rank 0 measured: every rank tests rank 0's choice
            self.best = distributed.all_gather_object(self.best)[0]
        last = (self.num_epochs or 0) - 1
        epoch = last
        if self.select == "best-val" and self.best is not None:
            epoch = self.best[1]
            if epoch != last and self.best_path is not None:
                self.method.load_state_dict(load_checkpoint(self.best_path, self.ctx.device))
        chosen = next((h for h in history if h["epoch"] == epoch + 1), None)
        return {
            "rule": self.select,
            "epoch": epoch + 1,
            "val": {k: chosen[k] for k in self.val_keys} if chosen else None,
            "val_identities": int(self.val.meta.get("identities", 0)),
            "val_query": len(self.val.query),
            "val_gallery": len(self.val.gallery),
            "history": history,
        }


def last_epoch_selection(num_epochs: Any) -> dict[str, Any]:
    """The selection of a run without a validation split: its last epoch (``train.epochs``)."""
    return {"rule": "last", "epoch": num_epochs, "val": None, "val_identities": 0}


def check_selection(config: Mapping[str, Any]) -> None:
    """``train.select=best-val`` needs validation identities (checked before any data is read)."""
    if str(config["train.select"]) == "best-val" and float(config["protocol.val_identities"]) == 0:
        raise ConfigError(
            "train.select=best-val needs a validation split: set protocol.val_identities "
            "(a fraction such as 0.2, or a count of training identities)"
        )
