"""ViT baseline: the transformer baseline of He et al., "TransReID: Transformer-based Object
Re-Identification", ICCV 2021 (Sec. 3.1, "Transformer-based strong baseline").

ViT-B/16 (ImageNet-21k -> 1k weights when given) over 256x128 images with non-overlapping 16x16
patches (``model.stride=12`` gives TransReID's overlapping patches), the [CLS] token f as the
global feature; BNNeck (Luo et al. 2019): the triplet loss on f, the ID loss (cross entropy, no
label smoothing) on BN(f) through a bias-free classifier. The recipe of the released config
(``configs/Market/vit_base.yml``): soft-margin batch-hard triplet (``NO_MARGIN``), SGD momentum
0.9, lr 0.008 (biases x2), weight decay 1e-4, 5 warm-up epochs then cosine to 0.002 x lr over 120
epochs, PK 16 x 4, flip, pad 10, random erasing 0.5, pixels normalised by 0.5/0.5, drop path
0.1. At test time: f before BN, cosine distance. TransReID tests its epoch 120 only: the harness's
last-epoch selection is the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from bench.api import Method, MethodContext, Sample, ranges, register_method
from bench.backbones.vit import build_vit, resolve_vit_weights, vit_tokens
from bench.engine.training import (
    EpochMeter,
    eval_loader,
    pk_sampler,
    pk_train_loader,
    warmup_cosine_factor,
)
from bench.layers.bnneck import BNNeck
from bench.losses import CrossEntropyLabelSmooth, TripletLoss


class ViTReIDNet(nn.Module):
    """ViT -> [CLS] feature f (after the final norm) -> BNNeck (BN(f), logits)."""

    def __init__(self, config: Mapping[str, Any], num_classes: int) -> None:
        super().__init__()
        c = config
        self.vit = build_vit(
            (c["input.height"], c["input.width"]),
            patch=c["model.patch"],
            stride=c["model.stride"],
            embed_dim=c["model.embed_dim"],
            depth=c["model.depth"],
            heads=c["model.heads"],
            drop_path=c["model.drop_path"],
            pretrained=c["model.pretrained"],
        )
        self.neck = BNNeck(c["model.embed_dim"], num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = vit_tokens(self.vit, x)[:, 0]
        f_bn, logits = self.neck(f)
        return f, f_bn, logits


#: The keys of a ViT image encoder (:func:`bench.backbones.vit.build_vit`), with their ranges.
VIT_RANGES = {
    "model.patch": ranges.AT_LEAST_ONE,
    "model.stride": ranges.AT_LEAST_ONE,
    "model.embed_dim": ranges.AT_LEAST_ONE,
    "model.depth": ranges.AT_LEAST_ONE,
    "model.heads": ranges.AT_LEAST_ONE,
    "model.drop_path": ranges.Range(0, 1, high_open=True),
}


@register_method
class ViTBaseline(Method):
    """TransReID's ViT baseline (He et al. 2021): ViT-B/16, BNNeck, ID + soft-margin triplet."""

    name = "vit-baseline"
    description = "ViT baseline (TransReID, He et al. 2021): ViT-B/16, BNNeck, ID+triplet"
    modalities = frozenset({"image"})
    default_config = {
        "model": {
            "embed_dim": 768,
            "depth": 12,
            "heads": 12,
            "patch": 16,
            "stride": 16,
            "drop_path": 0.1,
            "pretrained": "imagenet",
        },
        "input": {
            "height": 256,
            "width": 128,
            "flip": 0.5,
            "pad": 10,
            "random_erasing": 0.5,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
        },
        "sampler": {"p": 16, "k": 4},
        "optim": {
            "lr": 0.008,
            "momentum": 0.9,
            "weight_decay": 1e-4,
            "bias_lr_factor": 2.0,
            "warmup_epochs": 5,
            "warmup_factor": 0.01,
            "min_lr_factor": 0.002,
        },
        # triplet_margin 0: the soft margin log(1 + exp(d_ap - d_an)) (TransReID's NO_MARGIN).
        "loss": {"label_smooth": 0.0, "triplet_margin": 0.0},
        "train": {"epochs": 120},
        "eval": {"metric": "cosine"},
    }
    config_ranges = {
        **ranges.IMAGE_TRAINING_RANGES,
        **VIT_RANGES,
        "input.random_erasing": ranges.PROBABILITY,
        "optim.momentum": ranges.Range(0, 1, high_open=True),
        "optim.bias_lr_factor": ranges.POSITIVE,
        "optim.warmup_epochs": ranges.NON_NEGATIVE,
        "optim.warmup_factor": ranges.POSITIVE,
        "optim.min_lr_factor": ranges.NON_NEGATIVE,
        "loss.label_smooth": ranges.Range(0, 1, high_open=True),
        "loss.triplet_margin": ranges.NON_NEGATIVE,
    }
    presets = {
        "paper": {},
        # CPU preset: a 4-layer, 96-wide ViT over 8x8 patches of 64x32 images (32 patches),
        # random init, 30 epochs; SGD as the recipe but lr 0.01, no random erasing (as BoT
        # quick). Not tuned: one run on synthetic-person, seed 0, gave 11.6 mAP (2.4 min).
        "quick": {
            "model": {
                "embed_dim": 96,
                "depth": 4,
                "heads": 4,
                "patch": 8,
                "stride": 8,
                "drop_path": 0.0,
                "pretrained": "none",
            },
            "input": {"height": 64, "width": 32, "pad": 4, "random_erasing": 0.0},
            "sampler": {"p": 8, "k": 4},
            "optim": {"lr": 0.01, "warmup_epochs": 2},
            "train": {"epochs": 30},
        },
    }
    default_preset = "paper"

    def __init__(self, config: Mapping[str, Any], ctx: MethodContext) -> None:
        super().__init__(config, ctx)
        self.net: ViTReIDNet | None = None
        self.num_classes = 0

    @classmethod
    def preflight(cls, config: Mapping[str, Any]) -> None:
        """Stop before training when weights are named but not on disk."""
        resolve_vit_weights(config["model.pretrained"])

    def build(self, num_classes: int) -> ViTReIDNet:
        self.num_classes = num_classes
        self.net = ViTReIDNet(self.config, num_classes).to(self.device)
        return self.net

    def fit(self, train: Sequence[Sample]) -> None:
        c = self.config
        net = self.build(len({s.pid for s in train}))
        sampler = pk_sampler(train, c, self.ctx)
        loader = pk_train_loader(train, sampler, c, self.ctx)
        id_loss = CrossEntropyLabelSmooth(self.num_classes, c["loss.label_smooth"])
        margin = c["loss.triplet_margin"]
        triplet = TripletLoss(margin=margin if margin > 0 else None)
        optimizer = sgd_with_bias_factor(net, c)
        epochs = c["train.epochs"]
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda e: warmup_cosine_factor(
                e,
                c["optim.warmup_epochs"],
                epochs,
                c["optim.warmup_factor"],
                c["optim.min_lr_factor"],
            ),
        )
        for epoch in self.ctx.epochs(epochs, model=net, optimizer=optimizer, scheduler=scheduler):
            sampler.set_epoch(epoch)
            net.train()
            meter = EpochMeter()
            for batch in self.ctx.progress(loader, desc=f"epoch {epoch + 1}"):
                images = batch["image"].to(self.device, non_blocking=True)
                pids = batch["pid"].to(self.device)
                f, _, logits = net(images)
                loss = id_loss(logits, pids) + triplet(f, pids)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                meter.update(loss, logits, pids)
            self.ctx.log_epoch(epoch, **meter.scalars(self.ctx), lr=optimizer.param_groups[0]["lr"])
            scheduler.step()

    @torch.no_grad()
    def embed(self, samples: Sequence[Sample]) -> torch.Tensor:
        """The [CLS] feature f before BN (TransReID's ``NECK_FEAT: before``)."""
        if self.net is None:
            raise RuntimeError("ViTBaseline.embed() called before fit() or load_state_dict()")
        self.net.eval()
        feats = [
            self.net(batch["image"].to(self.device))[0].cpu()
            for batch in self.ctx.progress(eval_loader(samples, self.config, self.ctx), "features")
        ]
        return torch.cat(feats) if feats else torch.empty(0, self.config["model.embed_dim"])

    def state_dict(self) -> dict[str, Any]:
        if self.net is None:
            raise RuntimeError("ViTBaseline has no trained network to save")
        return {"num_classes": self.num_classes, "net": self.net.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.config["model.pretrained"] = "none"  # the weights come from the state
        self.build(int(state["num_classes"]))
        assert self.net is not None
        self.net.load_state_dict(state["net"])


def sgd_with_bias_factor(net: nn.Module, c: Mapping[str, Any]) -> torch.optim.SGD:
    """SGD with momentum whose bias parameters get ``optim.bias_lr_factor`` x the learning rate
    (TransReID's and BoT's released ``make_optimizer``); weight decay on every parameter."""
    weights = [p for n, p in net.named_parameters() if p.requires_grad and not n.endswith("bias")]
    biases = [p for n, p in net.named_parameters() if p.requires_grad and n.endswith("bias")]
    lr = c["optim.lr"]
    return torch.optim.SGD(
        [{"params": weights, "lr": lr}, {"params": biases, "lr": lr * c["optim.bias_lr_factor"]}],
        lr=lr,
        momentum=c["optim.momentum"],
        weight_decay=c["optim.weight_decay"],
    )
