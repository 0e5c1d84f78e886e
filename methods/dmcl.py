"""DMCL: Xiang et al., "Learning Collaborative Knowledge with Multimodal Representation for Polyp
Re-Identification" (Deep Multimodal Collaborative Learning; code: github.com/JeremyXSC/DMCL).

Mechanism (paper Sec. 3.2-3.3):

* image encoder: ResNet-50 (ImageNet), global average pool, a linear projection 2048 -> fusion
  width: the image token I;
* text encoder: BERT (bert-base-uncased), one feature per token: T_1..T_n (Eq. 1);
* fusion: the sequence P = [I, T_1..T_n] (Eq. 2) with positional encoding through self-attention
  layers (Eq. 3, head dimension d = 32); the output at the image position, I_c (Eq. 4), is the
  test feature and feeds an identity classifier;
* loss: L_total = L_triplet + L_ID (Eq. 7): cross-entropy (Eq. 5) plus the soft-margin triplet
  on squared distances (Eq. 6), batch-hard, in PK batches of 16 polyps x 4 images;
* the text is also used at test time (Sec. 4.2); cosine similarity.

Presets. ``paper`` (the default) follows the text: fusion width 768 with 24 heads of 32, ImageNet
ResNet-50, bert-base-uncased fine-tuned end to end, 224x224, flip and pad-crop, PK 16x4 = 64,
Adam, 180 epochs, the soft-margin triplet. Where the paper is silent it takes the released code's
choice: 4 post-norm fusion layers, FFN 2x width, ReLU, no fusion dropout (Sec. 3.2 names none),
last stride 2, texts of up to 291 tokens (``text.max_length``; the paper gives no length), and
each gallery image fused with the QUERY's text (``dmcl.gallery_text=query``; Sec. 4.2 says only
that "the text information is also employed during testing phase"). Its "Adam with a weight
decay co-efficient of 1e-5 and 1e-7" is read as learning rate 1e-5 and weight decay 1e-7.
``released`` follows the public code where it differs from the text: 512-wide fusion, 4 layers,
4 heads of 128, FFN 1024, bias-free projections, LayerNorms without weights, padding to 291
tokens with no attention mask, image projection Linear + BatchNorm + Dropout(0.5), frozen BERT
left in train mode (``text.frozen_dropout``, below), Adam 5e-6 without weight decay, 50 epochs,
margin-0.3 triplet over multi-similarity-mined pairs, and one text per patient
(``colo_pair.text_key=patient``, a dataset key: skipped on datasets without it). ``quick`` is
for the CPU: a ResNet-18 of base width 16 at 64x64, a 2-layer BERT of width 64 built from a
config with a WordPiece tokenizer trained on the training split's texts, texts of up to 48
tokens (synthetic-polyp's longest has 36: none is cut), fusion width 64 (2 heads of 32) with
dropout 0.1, Adam 1e-3, 15 epochs (about 45 s a fold on one CPU thread); otherwise the paper's
choices. Tuned on validation identities, never on test data (synthetic-polyp fold 0, seed 0,
``--set protocol.val_identities=8 --set protocol.val_every=1``: 8 of the fold's 36 training
polyps held out, fair protocol): validation mAP after 15 epochs 43.9 with fusion dropout 0.1
(quick's own; the paper has none) against 36.7 without, 39.6 with Adam 3e-4; trained on to 30
epochs it hovers between 43 and 48 after epoch 13 (44.5 at 30), so 15 epochs.

Gallery text (``--set dmcl.gallery_text=``): ``query`` (every preset) fuses each gallery image
with the query's text (the released test loop) and answers through ``score``: queries are grouped
by distinct text, the gallery's image tokens are computed once (the image token does not depend
on the text) and fused with each distinct query text in batches. ``own`` fuses every image,
query or gallery, with its own text and answers through ``embed``. Under the fair protocol a
gallery sample carries no identity-level text (Colo-Pair's sheet has one text per polyp: the
identity's label in words), so ``own`` needs image-level gallery text or
``--set protocol.oracle_gallery_text=true`` (an oracle run, marked so and never ranked); without
either, ``embed`` stops with an error naming both keys.

Texts longer than ``text.max_length`` tokens (``[CLS]`` and ``[SEP]`` included) are cut, never
silently: training texts are counted before the first epoch and evaluation texts when they are
first seen, with a warning naming the key whenever any is cut, and :meth:`DMCL.run_facts` records
the share cut and the longest token count.

Frozen text encoder (``text.frozen=true``, ``released``; ``paper`` and ``quick`` fine-tune BERT,
its dropout included, and ``text.frozen_dropout`` has no effect there): its weights never
change. ``text.frozen_dropout=false`` (the default) keeps it in eval mode, so each text has one
feature, computed once and cached. ``true`` (``released``) reproduces the released code, which
freezes BERT's weights but never calls eval() on it, so its dropout runs during training: each
training batch encodes its texts again in train mode (different features every time, no cache);
evaluation uses the encoder in eval mode and the cache.

Ablations (paper Table 3; its header is "Pre-training | Text data | Image data"). Read with the
Sec. 4.4 text ("testing whether text modality or image modality matters"; Fig. 6 compares the
"CNN-based training method without text information"), each row removes a modality from the
collaborative (fusion) learning. Each variant changes exactly one config key of ``dmcl``:

* ``dmcl-no-text`` (w/o text; text x, image v): ``dmcl.text=false``: the fusion encoder sees
  [I] alone; no text is read; the output does not depend on the text.
* ``dmcl-no-image`` (w/o image; text v, image x): ``dmcl.image=false``: the image token is
  replaced by a learned constant token, so I_c is a text-only feature read at position 0. With
  ``gallery_text=query`` (every preset's default) every gallery item of a query is fused from
  the same constant token and the query's text, so all get the same score: a chance ranking (the
  released test protocol has no meaning without images). Its own-text reading needs
  ``--set dmcl.gallery_text=own`` with image-level gallery text, or the oracle key above.
* ``dmcl-baseline`` (text x, image x: neither modality goes through collaborative learning):
  ``dmcl.fusion=false``: no fusion encoder; the projected image token I is the feature, trained
  with the same losses. Text can only enter through the fusion, so it is unused.

The table's header also admits another reading, "which encoders start from pretrained
weights" (baseline: neither ImageNet nor BERT weights; w/o image: BERT only; w/o text: ImageNet
only). That reading is a config change, not a variant: ``--set model.pretrained=none`` and/or
``--set text.pretrained=none`` with ``--preset paper``.

Model selection: the last epoch. (The released code keeps the epoch with the best mAP on the test
fold; we never look at test data.) Efficiency: with a frozen text encoder in eval mode the token
features are computed once per distinct text and cached; a batch encodes only its distinct
texts; the last fusion layer computes position 0 only; float16 autocast and channels-last on CUDA
(``train.amp``), no-ops on the CPU.

Deviations: batches are PK-sampled in every preset (the released code shuffles 24 frames with two
augmented views each; ``released`` uses PK 12x4 = 48 images, the same batch size); mining for the
paper's soft-margin triplet is batch-hard (the paper names PK batches, not the mining); key-padding
masks in ``paper``/``quick`` (the paper says nothing; the released code attends to padding).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.api import Method, MethodContext, Sample, Variant, ranges, register_method
from bench.backbones import bert
from bench.backbones.resnet import build_resnet, resolve_imagenet_weights
from bench.data.samplers import PKSampler
from bench.engine.amp import autocast, channels_last, grad_scaler, to_device_images
from bench.engine.training import EpochMeter, eval_loader, pk_sampler, pk_train_loader
from bench.errors import BenchError, ConfigError
from bench.layers.fusion import FusionEncoder
from bench.losses import CrossEntropyLabelSmooth, MultiSimilarityTripletLoss, TripletLoss

TRIPLETS = ("soft-margin", "ms-margin")


class DMCLNet(nn.Module):
    """Image encoder -> I; text encoder -> T_1..T_n; fusion of [I, T] -> I_c; classifier.

    ``use_image=False`` replaces I by a learned constant token; ``use_text=False`` fuses [I]
    alone; ``use_fusion=False`` returns I itself (no fusion encoder, no text).
    """

    def __init__(
        self, c: Mapping[str, Any], num_classes: int, text_encoder: bert.TextEncoder | None
    ) -> None:
        super().__init__()
        d = int(c["fusion.width"])
        self.use_image, self.use_fusion = bool(c["dmcl.image"]), bool(c["dmcl.fusion"])
        self.use_text = bool(c["dmcl.text"]) and self.use_fusion
        self.mask_padding = bool(c["fusion.mask_padding"])
        self.width = d
        if self.use_image:
            self.backbone = build_resnet(
                c["model.depth"], c["model.width"], c["model.last_stride"], c["model.pretrained"]
            )
            self.pool = nn.AdaptiveAvgPool2d(1)
            proj: list[nn.Module] = [nn.Linear(self.backbone.out_channels, d)]
            if c["model.proj_bn"]:
                proj.append(nn.BatchNorm1d(d))
            if c["model.proj_dropout"] > 0:
                proj.append(nn.Dropout(c["model.proj_dropout"]))
            self.image_proj = nn.Sequential(*proj)
        else:
            self.image_slot = nn.Parameter(torch.randn(d) * 0.02)
        self.text_encoder: bert.TextEncoder | None = None
        self.text_cache: bert.TextFeatureCache | None = None
        self.text_frozen = bool(c["text.frozen"])
        self.frozen_dropout = self.text_frozen and bool(c["text.frozen_dropout"])
        if self.use_text:
            if text_encoder is None:
                raise ValueError("DMCLNet with text needs a text encoder")
            self.text_encoder = text_encoder
            tw = text_encoder.width
            self.text_proj = nn.Linear(tw, d) if tw != d else nn.Identity()
            if self.text_frozen:
                text_encoder.requires_grad_(False)
                self.text_cache = bert.TextFeatureCache(text_encoder)
        if self.use_fusion:
            self.fusion = FusionEncoder(
                d,
                c["fusion.layers"],
                c["fusion.heads"],
                c["fusion.ffn"],
                dropout=c["fusion.dropout"],
                norm_first=c["fusion.norm_first"],
                bias=c["fusion.bias"],
                norm_affine=c["fusion.norm_affine"],
                max_length=int(c["text.max_length"]) + 1,
            )
        self.classifier = nn.Linear(d, num_classes)

    def train(self, mode: bool = True) -> DMCLNet:
        super().train(mode)
        if self.text_encoder is not None and self.text_frozen and not self.frozen_dropout:
            self.text_encoder.eval()  # frozen, no dropout: one feature per text
        return self

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True, assign: bool = False):
        if self.text_cache is not None:
            self.text_cache.clear()
        return super().load_state_dict(state, strict=strict, assign=assign)

    def image_tokens(self, images: torch.Tensor | None, batch: int | None = None) -> torch.Tensor:
        """(B, 3, H, W) images -> (B, d) image tokens I (the learned slot without images)."""
        if not self.use_image:
            if batch is None:
                raise ValueError("image_tokens() without images needs the batch size")
            return self.image_slot.unsqueeze(0).expand(batch, -1)
        if images is None:
            raise ValueError("this DMCL network needs images")
        return self.image_proj(self.pool(self.backbone(images)).flatten(1))

    def text_tokens(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Texts -> (B, n, d) projected token features T and a (B, n) mask of real tokens.

        Only the distinct texts are encoded: from the cache when the encoder is frozen, except
        in training with ``text.frozen_dropout`` (encoded again in train mode, no gradient)."""
        assert self.text_encoder is not None
        unique = sorted(set(texts))
        where = {t: i for i, t in enumerate(unique)}
        if self.text_cache is not None and not (self.training and self.frozen_dropout):
            feats, mask = self.text_cache.lookup(unique)
            feats = feats.to(self.classifier.weight.device)
            mask = mask.to(feats.device)
        elif self.text_frozen:
            with torch.no_grad():
                feats, mask = self.text_encoder(unique)
        else:
            feats, mask = self.text_encoder(unique)
        index = torch.tensor([where[t] for t in texts], device=feats.device)
        return self.text_proj(feats)[index], mask[index]

    def fuse(
        self,
        image_tok: torch.Tensor,
        text_tok: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """I (B, d) and T (B, n, d) -> I_c (B, d): the fusion output at the image position."""
        if not self.use_fusion:
            return image_tok
        if text_tok is None:
            return self.fusion(image_tok.unsqueeze(1), first_only=True)
        seq = torch.cat([image_tok.unsqueeze(1).to(text_tok.dtype), text_tok], dim=1)
        mask = None
        if self.mask_padding and text_mask is not None:
            first = torch.ones_like(text_mask[:, :1])
            mask = torch.cat([first, text_mask], dim=1)
        return self.fusion(seq, mask, first_only=True)

    def forward(
        self, images: torch.Tensor | None, texts: Sequence[str] | None, batch: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (I_c (B, d), identity logits (B, classes))."""
        image_tok = self.image_tokens(images, batch)
        if self.use_text:
            if texts is None:
                raise ValueError("this DMCL network needs texts")
            feat = self.fuse(image_tok, *self.text_tokens(texts))
        else:
            feat = self.fuse(image_tok)
        return feat, self.classifier(feat)


def _pairs_chunks(num_texts: int, num_gallery: int, chunk: int):
    """(text index, gallery slice) runs covering every (text, gallery) pair, ``chunk`` per step."""
    total = num_texts * num_gallery
    for start in range(0, total, chunk):
        stop = min(start + chunk, total)
        runs = []
        p = start
        while p < stop:
            u, g0 = divmod(p, num_gallery)
            g1 = min(num_gallery, g0 + (stop - p))
            runs.append((u, g0, g1))
            p += g1 - g0
        yield runs


@torch.no_grad()
def score_from_tokens(
    net: DMCLNet,
    query_tokens: torch.Tensor,
    query_texts: Sequence[str],
    gallery_tokens: torch.Tensor,
    batch: int = 1024,
) -> torch.Tensor:
    """Query-conditioned similarities (Q, G): cos(I_c(q, t_q), I_c(g, t_q)) (released code).

    Batched: queries are grouped by distinct text; each distinct text's token features are
    computed once; (text, gallery) pairs are fused ``batch`` at a time from the gallery's image
    tokens, which do not depend on the text and are computed once by the caller.
    """
    device = gallery_tokens.device
    unique = sorted(set(query_texts))
    text_tok, text_mask = net.text_tokens(unique)
    where = {t: i for i, t in enumerate(unique)}
    q_text = torch.tensor([where[t] for t in query_texts], device=device)
    query_feats = F.normalize(net.fuse(query_tokens, text_tok[q_text], text_mask[q_text]), dim=1)
    members = [torch.nonzero(q_text == u).flatten() for u in range(len(unique))]
    scores = torch.empty(len(query_texts), len(gallery_tokens), device=device)
    for runs in _pairs_chunks(len(unique), len(gallery_tokens), batch):
        t_idx = torch.cat(
            [torch.full((g1 - g0,), u, device=device, dtype=torch.long) for u, g0, g1 in runs]
        )
        g_tok = torch.cat([gallery_tokens[g0:g1] for _, g0, g1 in runs])
        fused = F.normalize(net.fuse(g_tok, text_tok[t_idx], text_mask[t_idx]), dim=1).float()
        offset = 0
        for u, g0, g1 in runs:
            rows = members[u]
            part = fused[offset : offset + g1 - g0]
            scores[rows, g0:g1] = query_feats[rows].float() @ part.t()
            offset += g1 - g0
    return scores


@torch.no_grad()
def naive_score(
    net: DMCLNet,
    query_images: torch.Tensor,
    query_texts: Sequence[str],
    gallery_images: torch.Tensor,
    batch: int = 1024,
) -> torch.Tensor:
    """Reference for :func:`score_from_tokens`: one pass per query, as a direct reading of the
    released test loop: encode the query's text, encode every gallery image, fuse, compare.
    Nothing is shared between queries (no text cache, no reuse of gallery image tokens)."""
    rows = []
    for i, text in enumerate(query_texts):
        encoder = net.text_encoder
        assert encoder is not None
        feats, mask = encoder([text])
        t_tok = net.text_proj(feats)
        q = net.fuse(net.image_tokens(query_images[i : i + 1]), t_tok, mask)
        row = []
        for s in range(0, len(gallery_images), batch):
            g_tok = net.image_tokens(gallery_images[s : s + batch])
            n = len(g_tok)
            g = net.fuse(g_tok, t_tok.expand(n, -1, -1), mask.expand(n, -1))
            row.append(F.normalize(g, dim=1) @ F.normalize(q, dim=1).t())
        rows.append(torch.cat(row).flatten())
    return torch.stack(rows)


@register_method
class DMCL(Method):
    """DMCL (Xiang et al.): ResNet image token + BERT text tokens, self-attention fusion, I_c."""

    name = "dmcl"
    description = (
        "DMCL (Xiang et al.): ResNet-50 image token + BERT tokens -> self-attention fusion; "
        "ID + soft-margin triplet"
    )
    modalities = frozenset({"image", "text"})
    default_config = {
        "model": {
            "depth": 50,
            "width": 64,
            "last_stride": 2,
            "pretrained": "imagenet",
            "proj_bn": False,
            "proj_dropout": 0.0,
        },
        "text": {
            "pretrained": "bert-base-uncased",
            "frozen": False,
            "frozen_dropout": False,
            "max_length": 291,
            "pad_to_max": False,
            "vocab_size": 1000,
            "hidden": 128,
            "layers": 2,
            "heads": 2,
            "intermediate": 512,
        },
        "fusion": {
            "width": 768,
            "layers": 4,
            "heads": 24,
            "ffn": 1536,
            "dropout": 0.0,
            "norm_first": False,
            "bias": True,
            "norm_affine": True,
            "mask_padding": True,
        },
        "dmcl": {
            "image": True,
            "text": True,
            "fusion": True,
            "gallery_text": "query",
            "score_batch": 1024,
        },
        "input": {"height": 224, "width": 224, "flip": 0.5, "pad": 10},
        "sampler": {"p": 16, "k": 4},
        "optim": {"lr": 1e-5, "weight_decay": 1e-7},
        "loss": {"triplet": "soft-margin", "margin": 0.3, "ms_epsilon": 0.1, "label_smooth": 0.0},
        "train": {"epochs": 180, "amp": True},
        "eval": {"metric": "cosine"},
    }
    config_choices = {
        "model.depth": (18, 34, 50, 101),
        "model.last_stride": (1, 2),
        "dmcl.gallery_text": ("own", "query"),
        "loss.triplet": TRIPLETS,
    }
    config_ranges = {
        **ranges.IMAGE_TRAINING_RANGES,
        "model.width": ranges.AT_LEAST_ONE,
        "model.proj_dropout": ranges.Range(0, 1, high_open=True),
        "text.max_length": ranges.AT_LEAST_TWO,  # [CLS] and [SEP] at least
        "text.vocab_size": ranges.AT_LEAST_ONE,
        "text.hidden": ranges.AT_LEAST_ONE,
        "text.layers": ranges.AT_LEAST_ONE,
        "text.heads": ranges.AT_LEAST_ONE,
        "text.intermediate": ranges.AT_LEAST_ONE,
        "fusion.width": ranges.AT_LEAST_ONE,
        "fusion.layers": ranges.AT_LEAST_ONE,
        "fusion.heads": ranges.AT_LEAST_ONE,
        "fusion.ffn": ranges.AT_LEAST_ONE,
        "fusion.dropout": ranges.Range(0, 1, high_open=True),
        "dmcl.score_batch": ranges.AT_LEAST_ONE,
        "loss.margin": ranges.NON_NEGATIVE,
        "loss.ms_epsilon": ranges.NON_NEGATIVE,
        "loss.label_smooth": ranges.Range(0, 1, high_open=True),
    }
    presets = {
        "paper": {},
        "released": {
            "model": {"proj_bn": True, "proj_dropout": 0.5},
            "text": {"frozen": True, "frozen_dropout": True, "pad_to_max": True},
            "fusion": {
                "width": 512,
                "heads": 4,
                "ffn": 1024,
                "bias": False,
                "norm_affine": False,
                "mask_padding": False,
            },
            "sampler": {"p": 12, "k": 4},
            "optim": {"lr": 5e-6, "weight_decay": 0.0},
            "loss": {"triplet": "ms-margin"},
            "train": {"epochs": 50},
            "colo_pair": {"text_key": "patient"},
        },
        "quick": {
            "model": {"depth": 18, "width": 16, "pretrained": "none"},
            "text": {
                "pretrained": "none",
                # synthetic-polyp's texts are at most 36 tokens under this tokenizer (fold
                # splits of 24 and 48 polyps, unseen words spelled in pieces): 48 cuts none
                "max_length": 48,
                "vocab_size": 400,
                "hidden": 64,
                "layers": 2,
                "heads": 2,
                "intermediate": 128,
            },
            # fusion dropout 0.1, not the paper's 0: validation mAP 43.9 with it, 36.7 without
            # (module docstring)
            "fusion": {"width": 64, "layers": 2, "heads": 2, "ffn": 128, "dropout": 0.1},
            "input": {"height": 64, "width": 64, "pad": 4},
            "optim": {"lr": 1e-3, "weight_decay": 5e-4},
            "train": {"epochs": 15},
        },
    }
    default_preset = "paper"
    variants = {
        "dmcl-no-text": Variant(
            "DMCL w/o text (Table 3): the fusion sees the image token alone",
            {"dmcl": {"text": False}},
            frozenset({"image"}),
        ),
        "dmcl-no-image": Variant(
            "DMCL w/o image (Table 3): a learned constant token replaces the image token",
            {"dmcl": {"image": False}},
            frozenset({"text"}),
        ),
        "dmcl-baseline": Variant(
            "DMCL baseline (Table 3): no fusion encoder, no text; the image token is the feature",
            {"dmcl": {"fusion": False}},
            frozenset({"image"}),
        ),
    }

    def __init__(self, config: Mapping[str, Any], ctx: MethodContext) -> None:
        super().__init__(config, ctx)
        self.net: DMCLNet | None = None
        self.num_classes = 0
        self.tokenizer_json: str | None = None
        self.token_counts: dict[str, int] = {}  # distinct text -> tokens before truncation

    # -- configuration ----------------------------------------------------------------------

    @classmethod
    def preflight(cls, config: Mapping[str, Any]) -> None:
        """Stop before training when named weights are not on disk; check combinations."""
        if not config["dmcl.image"] and not config["dmcl.fusion"]:
            raise ConfigError(
                "dmcl.image=false needs dmcl.fusion=true (without both there is no input)"
            )
        if not config["dmcl.image"] and not config["dmcl.text"]:
            raise ConfigError("dmcl.image=false and dmcl.text=false leave DMCL without input")
        fw, heads = config["fusion.width"], config["fusion.heads"]
        if fw % heads:
            raise ConfigError(f"fusion.width {fw} is not divisible by fusion.heads {heads}")
        hidden, text_heads = config["text.hidden"], config["text.heads"]
        if str(config["text.pretrained"]).lower() == "none" and hidden % text_heads:
            raise ConfigError(f"text.hidden {hidden} is not divisible by text.heads {text_heads}")
        if config["dmcl.image"]:
            resolve_imagenet_weights(config["model.depth"], config["model.pretrained"])
        if cls._uses_text(config) and str(config["text.pretrained"]).lower() != "none":
            bert.resolve_bert(config["text.pretrained"])

    @staticmethod
    def _uses_text(config: Mapping[str, Any]) -> bool:
        return bool(config["dmcl.text"]) and bool(config["dmcl.fusion"])

    @property
    def answers(self) -> str:
        """``score`` when each gallery image is fused with the query's text, else ``embed``."""
        if self._uses_text(self.config) and self.config["dmcl.gallery_text"] == "query":
            return "score"
        return "embed"

    # -- building ----------------------------------------------------------------------------

    def _text_encoder(self, train: Sequence[Sample] | None) -> bert.TextEncoder | None:
        c = self.config
        if not self._uses_text(c):
            return None
        pretrained = str(c["text.pretrained"]).strip()
        if pretrained.lower() == "none":
            if self.tokenizer_json is None:
                assert train is not None
                tokenizer = bert.train_wordpiece_tokenizer(
                    [s.text for s in train if s.text], vocab_size=c["text.vocab_size"]
                )
                self.tokenizer_json = bert.tokenizer_to_json(tokenizer)
            tokenizer = bert.tokenizer_from_json(self.tokenizer_json)
            model = bert.build_bert(
                len(tokenizer),
                c["text.hidden"],
                c["text.layers"],
                c["text.heads"],
                c["text.intermediate"],
                max_positions=max(64, c["text.max_length"]),
            )
        else:
            model, tokenizer = bert.load_pretrained_bert(bert.resolve_bert(pretrained))
            if c["text.max_length"] > model.config.max_position_embeddings:
                raise ConfigError(
                    f"text.max_length {c['text.max_length']} exceeds the BERT's "
                    f"{model.config.max_position_embeddings} positions"
                )
        return bert.TextEncoder(model, tokenizer, c["text.max_length"], c["text.pad_to_max"])

    def build(self, num_classes: int, train: Sequence[Sample] | None = None) -> DMCLNet:
        """Create the network for ``num_classes`` identities (untrained). Without a pretrained
        BERT the tokenizer is trained on ``train``'s texts (the training split only)."""
        self.num_classes = num_classes
        net = DMCLNet(self.config, num_classes, self._text_encoder(train)).to(self.device)
        if net.use_image:
            channels_last(net.backbone, self.device)
        self.net = net
        return net

    def _check_texts(self, samples: Sequence[Sample], split: str) -> None:
        if not self._uses_text(self.config):
            return
        for s in samples:
            if s.text:
                continue
            if split == "evaluation":
                raise BenchError(
                    f"DMCL with dmcl.gallery_text=own fuses every evaluation image with its own "
                    f"text, but {s.path} has none: gallery samples carry their text only when it "
                    "is image-level or under --set protocol.oracle_gallery_text=true (an oracle "
                    "run, marked so and never ranked); use dmcl.gallery_text=query (each gallery "
                    "image fused with the query's text) or dmcl-no-text"
                )
            raise BenchError(
                f"DMCL needs a text for every {split} sample, but {s.path} has none "
                "(use dmcl-no-text for image-only data)"
            )

    def _count_tokens(self, texts: Sequence[str | None], split: str) -> None:
        """Count the new distinct ``texts``' tokens; warn (one line, naming ``text.max_length``)
        when any of them is cut."""
        net = self.net
        if net is None or net.text_encoder is None:
            return
        new = sorted({t for t in texts if t and t not in self.token_counts})
        if not new:
            return
        counts = net.text_encoder.token_lengths(new)
        self.token_counts.update(zip(new, counts))
        limit = int(self.config["text.max_length"])
        cut = sum(n > limit for n in counts)
        if cut:
            warnings.warn(
                f"DMCL: {cut} of {len(new)} distinct {split} texts ({100 * cut / len(new):.1f}%) "
                f"are longer than text.max_length={limit} tokens and are cut (the longest has "
                f"{max(counts)} tokens); raise --set text.max_length to keep them whole",
                stacklevel=2,
            )

    def run_facts(self) -> dict[str, Any]:
        """Truncation by ``text.max_length`` over the distinct texts tokenized (training and
        evaluation): how many, how many cut, their share and the longest token count."""
        if not self._uses_text(self.config):
            return {}
        limit = int(self.config["text.max_length"])
        counts = list(self.token_counts.values())
        cut = sum(n > limit for n in counts)
        return {
            "text": {
                "max_length": limit,
                "texts": len(counts),
                "cut": cut,
                "cut_share": cut / len(counts) if counts else 0.0,
                "longest_tokens": max(counts, default=0),
            }
        }

    # -- training ----------------------------------------------------------------------------

    def _batches(self, train: Sequence[Sample], sampler: PKSampler):
        """Yield ``(images or None, pids, texts)``; images are not read without an image
        encoder."""
        if self.config["dmcl.image"]:
            loader = pk_train_loader(train, sampler, self.config, self.ctx, random_erasing=0.0)
            for batch in loader:
                texts = [train[i].text or "" for i in batch["index"].tolist()]
                yield batch["image"], batch["pid"], texts
        else:
            for idx in sampler:
                yield None, torch.tensor([train[i].pid for i in idx]), [train[i].text for i in idx]

    def fit(self, train: Sequence[Sample]) -> None:
        c = self.config
        self._check_texts(train, "training")
        net = self.build(len({s.pid for s in train}), train)
        self._count_tokens([s.text for s in train], "training")
        sampler = pk_sampler(train, c, self.ctx)
        id_loss = CrossEntropyLabelSmooth(self.num_classes, c["loss.label_smooth"])
        if c["loss.triplet"] == "soft-margin":
            triplet: nn.Module = TripletLoss(margin=None, squared=True)
        else:
            triplet = MultiSimilarityTripletLoss(c["loss.margin"], c["loss.ms_epsilon"])
        params = [p for p in net.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=c["optim.lr"], weight_decay=c["optim.weight_decay"])
        scaler = grad_scaler(self.device, c["train.amp"])
        for epoch in self.ctx.epochs(
            c["train.epochs"], model=net, optimizer=optimizer, scaler=scaler
        ):
            sampler.set_epoch(epoch)
            net.train()
            meter = EpochMeter()
            for images, pids, texts in self.ctx.progress(
                self._batches(train, sampler), desc=f"epoch {epoch + 1}", total=len(sampler)
            ):
                pids = pids.to(self.device)
                if images is not None:
                    images = to_device_images(images, self.device)
                with autocast(self.device, c["train.amp"]):
                    feat, logits = net(images, texts, batch=len(pids))
                loss = id_loss(logits.float(), pids) + triplet(feat.float(), pids)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                meter.update(loss, logits, pids)
            self.ctx.log_epoch(epoch, **meter.scalars(self.ctx))

    # -- representations ---------------------------------------------------------------------

    def _require_net(self) -> DMCLNet:
        if self.net is None:
            raise RuntimeError("DMCL used before fit() or load_state_dict()")
        return self.net

    @torch.no_grad()
    def image_tokens(self, samples: Sequence[Sample]) -> torch.Tensor:
        """Image tokens I of ``samples`` (the learned slot when the variant has no image)."""
        net, c = self._require_net(), self.config
        net.eval()
        if not net.use_image:
            return net.image_tokens(None, batch=len(samples)).clone()
        out = []
        for batch in self.ctx.progress(eval_loader(samples, c, self.ctx), desc="image tokens"):
            with autocast(self.device, c["train.amp"]):
                out.append(net.image_tokens(to_device_images(batch["image"], self.device)).float())
        return torch.cat(out) if out else torch.empty(0, net.width, device=self.device)

    @torch.no_grad()
    def embed(self, samples: Sequence[Sample]) -> torch.Tensor:
        """I_c of each sample fused with its own text (``gallery_text=own``; every variant
        without text)."""
        net, c = self._require_net(), self.config
        self._check_texts(samples, "evaluation")
        self._count_tokens([s.text for s in samples], "evaluation")
        tokens = self.image_tokens(samples)
        out = []
        bs = c["eval.batch_size"]
        for s in range(0, len(samples), bs):
            with autocast(self.device, c["train.amp"]):
                if net.use_text:
                    texts = [x.text or "" for x in samples[s : s + bs]]
                    out.append(net.fuse(tokens[s : s + bs], *net.text_tokens(texts)).float())
                else:
                    out.append(net.fuse(tokens[s : s + bs]).float())
        return torch.cat(out) if out else torch.empty(0, net.width)

    @torch.no_grad()
    def score(self, query: Sequence[Sample], gallery: Sequence[Sample]) -> torch.Tensor:
        """``gallery_text=query``: cos(I_c(q, t_q), I_c(g, t_q)) for every pair (Q, G)."""
        net, c = self._require_net(), self.config
        self._check_texts(query, "query")
        self._count_tokens([s.text for s in query], "query")
        q_tok, g_tok = self.image_tokens(query), self.image_tokens(gallery)
        with autocast(self.device, c["train.amp"]):
            return score_from_tokens(
                net, q_tok, [s.text or "" for s in query], g_tok, c["dmcl.score_batch"]
            )

    # -- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        net = self._require_net()
        return {
            "num_classes": self.num_classes,
            "tokenizer": self.tokenizer_json,
            "net": net.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        # Weights come from the state: never look for ImageNet weights when restoring.
        self.config["model.pretrained"] = "none"
        self.tokenizer_json = state.get("tokenizer")
        self.build(int(state["num_classes"]))
        assert self.net is not None
        self.net.load_state_dict(state["net"])
