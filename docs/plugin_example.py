"""Stripe colour histograms with a linear metric learned by batch-hard triplet: a method plugin.

Save as ``methods/stripe_histogram.py`` in a checkout, or in a folder listed in ``$BENCH_PLUGINS``,
or ship it in your own package with an entry point in the group ``bench.methods``.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from bench import Method, Sample, register_method
from bench.data.images import open_image
from bench.data.samplers import PKSampler
from bench.losses import TripletLoss


def stripe_histograms(samples: Sequence[Sample], stripes: int, bins: int) -> torch.Tensor:
    """Per horizontal stripe and colour channel, a histogram of ``bins`` bins; L1-normalised."""
    feats = []
    for s in samples:
        img = np.asarray(open_image(s.path).resize((32, 64)))
        hist = np.concatenate(
            [
                np.histogram(stripe[..., ch], bins=bins, range=(0, 256))[0]
                for stripe in np.array_split(img, stripes, axis=0)
                for ch in range(3)
            ]
        ).astype(np.float32)
        feats.append(hist / hist.sum())
    return torch.from_numpy(np.stack(feats))


@register_method
class StripeHistogram(Method):
    """Stripe colour histograms projected by a linear map trained with batch-hard triplet loss."""

    name = "stripe-histogram"
    description = "stripe colour histograms + a linear metric learned with batch-hard triplet"
    modalities = frozenset({"image"})
    default_config = {
        "hist": {"stripes": 4, "bins": 8, "dim": 64},
        "train": {"epochs": 20, "lr": 0.01},
        "sampler": {"p": 8, "k": 4},
    }

    def fit(self, train: Sequence[Sample]) -> None:
        c = self.config
        x = stripe_histograms(train, c["hist.stripes"], c["hist.bins"])
        pids = torch.tensor([s.pid for s in train])
        self.proj = torch.nn.Linear(x.shape[1], c["hist.dim"])
        optimizer = torch.optim.Adam(self.proj.parameters(), lr=c["train.lr"])
        sampler = PKSampler(pids.tolist(), c["sampler.p"], c["sampler.k"], seed=self.ctx.seed)
        triplet = TripletLoss(margin=0.3)
        for epoch in self.ctx.epochs(c["train.epochs"], proj=self.proj, optimizer=optimizer):
            sampler.set_epoch(epoch)
            for batch in sampler:
                loss = triplet(self.proj(x[batch]), pids[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            self.ctx.log_epoch(epoch, loss=loss.item())

    def embed(self, samples: Sequence[Sample]) -> torch.Tensor:
        c = self.config
        return self.proj(stripe_histograms(samples, c["hist.stripes"], c["hist.bins"]))

    def state_dict(self) -> dict[str, Any]:
        return {"in_features": self.proj.in_features, "proj": self.proj.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.proj = torch.nn.Linear(state["in_features"], self.config["hist.dim"])
        self.proj.load_state_dict(state["proj"])
