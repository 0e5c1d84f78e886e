"""NTSSL: polyp tracklet representations learned from the temporal structure of colonoscopy
videos, with no identity labels (Parolari et al., "Contrastive Learning under Noisy Temporal
Self-Supervision for Colonoscopy Videos"; released code lparolari/ntssl, ``HierarchicalMVEEncoder``
and ``TemporalTemperatureBagBatchSampler``).

Mechanism, as the released code implements it:

* **Encoder** (:class:`TrackletEncoder`): per-frame ResNet-50 (global average pool, 2048) ->
  Linear(2048, 256) -> a zero-initialised CLS token before the frame tokens -> a 3-layer post-norm
  transformer encoder (8 heads, FFN 1024, ReLU, dropout 0.1), no positional encoding. A projector
  256 -> 256 -> 128 (ReLU) maps every output token for the loss.
* **Fragments** (:func:`make_fragments`): each tracklet taken every ``fragment.stride`` (4)
  frames, cut into consecutive fragments of ``fragment.length`` (8), an incomplete last one
  dropped. Frames are crops of the box scaled ``input.box_scale`` (5) times about its centre,
  clamped to the frame and resized to ``input.size`` (232); no other augmentation.
* **Noisy temporal bags** (:class:`TemporalTemperatureBags`): every fragment is an anchor once
  per epoch; its video's fragments are ranked by the distance of their normalised start
  positions; rank 0 is kept and ``k - 1`` more ranks are drawn without replacement (Gumbel top-k)
  with P(r) ~ exp(-r / T), T on a cosine schedule from 0.3 to 12 over the epochs. 12 bags of 5
  per batch, the incomplete last batch dropped. A bag is a guess: a temporal neighbour is usually,
  not always, the same polyp.
* **Noise-aware loss** (:func:`mil_nce`): MIL-NCE at temperature 0.07, per row the log-sum-exp over
  all other rows minus the log-sum-exp over the positives, with three weighted terms
  (:func:`ntssl_loss`): fragment CLS tokens labelled by bag, frame tokens labelled by bag, and frame
  tokens labelled by fragment.
* AdamW, lr 1e-5, weight decay 1e-4, no schedule, 50 epochs. Test embedding: the 256-d CLS output
  before the projector over the whole tracklet (every ``eval.stride`` = 4th frame).

Presets. ``paper`` follows the released training and evaluation commands (the paper's README;
the paper and its code are one source here) with ImageNet ResNet-50 (IMAGENET1K_V2 there;
``model.pretrained=imagenet`` finds torchvision's file offline), except for two defects of those
commands, documented and not reproduced:

* normalisation: the training command does not pass ``--aug_normalize`` while the evaluation
  commands pass ``--data_aug_normalize``, so the network would be tested on inputs normalised
  (mean 0.45, std 0.225) unlike any it was trained on. Here frames are normalised in training and
  test alike (``input.normalize=both``); ``input.normalize=test`` reproduces the mismatch (on a
  development copy of ``synthetic-colonoscopy``, seed 1, quick: 14.1 mAP against 34.1).
* loss weights: the README passes two MIL-NCE weights (1.0 1.0) to a loss that unpacks three,
  which stops it; every term weighs 1.0 here (``loss.weights``).

``quick`` is a CPU preset (below).

Baselines from the same parts, each one value of ``loss.positives``:

* ``bag`` (default): NTSSL, self-supervised (``fit`` sees no identity).
* ``one`` (variant ``ntssl-infonce``): one positive per anchor, drawn by the same temporal rule
  (bags of 2, the same number of fragments per batch), plain InfoNCE on the fragment CLS
  (the first MIL-NCE term with a single positive; the frame terms, multi-positive, are off).
* ``identity`` (variant ``ntssl-supcon``): supervised contrastive, the upper bound. Batches of
  ``sampler.bags`` identities x ``sampler.k`` fragments (the released ``MultiPosConBatchSampler``)
  and the released supervised loss, multi-positive contrastive (:func:`multi_positive_contrastive`)
  on the fragment CLS. This one trains on identity labels (:meth:`NTSSL.supervision_for`).

Model selection: the released code keeps the checkpoint of the lowest MIL-NCE on its labelled
validation videos. Here the harness selects (``train.select``: the last epoch by default, or
``best-val`` on the protocol's validation split); ``fit`` never sees labels for it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from bench.api import Method, MethodContext, Sample, ranges, register_method
from bench.api.method import Variant
from bench.backbones.resnet import build_resnet, resolve_imagenet_weights
from bench.data.images import open_image, seed_worker
from bench.engine.represent import clips_of
from bench.errors import BenchError

#: The normalisation of the released commands (``--aug_normalize``): mean 0.45, std 0.225.
NTSSL_MEAN, NTSSL_STD = 0.45, 0.225
POSITIVES = ("bag", "one", "identity")


# --------------------------------------------------------------------------- frames and fragments


def crop_box(
    box: tuple[float, float, float, float], scale: float, width: int, height: int
) -> tuple[int, int, int, int]:
    """The released anchor crop: the box ``(x, y, w, h)`` scaled ``scale`` times about its
    centre, clamped to the frame, truncated to whole pixels; ``(left, top, right, bottom)``."""
    x, y, w, h = box
    dx, dy = w * (scale - 1) / 2, h * (scale - 1) / 2
    x1, y1 = min(max(x - dx, 0.0), width), min(max(y - dy, 0.0), height)
    x2, y2 = min(max(x + w + dx, 0.0), width), min(max(y + h + dy, 0.0), height)
    left, top = int(x1), int(y1)
    cw, ch = max(1, int(x2 - x1)), max(1, int(y2 - y1))
    return left, top, left + cw, top + ch


def load_crop(sample: Sample, scale: float, size: int, normalize: bool) -> torch.Tensor:
    """One frame of a tracklet as the encoder sees it: ``(3, size, size)`` in [0, 1], or
    normalised (mean 0.45, std 0.225) with ``normalize``. A sample without a box is the whole
    frame resized."""
    img = open_image(sample.path)
    if sample.box is not None:
        img = img.crop(crop_box(sample.box, scale, img.width, img.height))
    img = img.resize((size, size), Image.Resampling.BILINEAR)
    x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    x = x.view(size, size, 3).permute(2, 0, 1).float().div_(255)
    return (x - NTSSL_MEAN) / NTSSL_STD if normalize else x


@dataclass(frozen=True)
class Fragment:
    """``length`` frames of one tracklet, every ``stride``-th: its video and normalised start
    position in that video (0 at the video's first annotated frame, 1 at its last)."""

    frames: tuple[Sample, ...]
    video: str
    position: float
    pid: int


def make_fragments(samples: Sequence[Sample], length: int, stride: int) -> list[Fragment]:
    """The released ``Fragmenter`` (``drop_last``): per tracklet (``clip``) in frame order, every
    ``stride``-th frame, cut into consecutive runs of ``length``; an incomplete last run dropped."""
    for s in samples:
        if s.clip is None:
            raise BenchError(f"NTSSL trains on tracklets, but {s.path} belongs to none (clip)")
    span: dict[str, tuple[int, int]] = {}
    for s in samples:
        video, frame = s.video or s.clip or "", s.frame or 0
        lo, hi = span.get(video, (frame, frame))
        span[video] = (min(lo, frame), max(hi, frame))
    fragments = []
    for clip in clips_of(samples):
        strided = clip[::stride]
        for i in range(0, len(strided) - length + 1, length):
            frames = tuple(strided[i : i + length])
            video = frames[0].video or frames[0].clip or ""
            lo, hi = span[video]
            position = ((frames[0].frame or 0) - lo) / (hi - lo) if hi > lo else 0.0
            fragments.append(Fragment(frames, video, position, frames[0].pid))
    return fragments


class FragmentFrames(Dataset):
    """Fragments -> ``(crops (length, 3, size, size), index)``."""

    def __init__(
        self, fragments: Sequence[Fragment], scale: float, size: int, normalize: bool
    ) -> None:
        self.fragments, self.scale, self.size, self.normalize = (
            list(fragments),
            scale,
            size,
            normalize,
        )

    def __len__(self) -> int:
        return len(self.fragments)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        frames = self.fragments[i].frames
        crops = torch.stack([load_crop(s, self.scale, self.size, self.normalize) for s in frames])
        return crops, i


# --------------------------------------------------------------------------- bag samplers


def bag_temperature(epoch: int, epochs: int, t_min: float, t_max: float) -> float:
    """The cosine schedule of the bag temperature: ``t_min`` at epoch 0, rising to ``t_max`` as
    ``c = epoch / epochs`` goes to 1: ``T = t_min + (1 - cos(pi c)) / 2 (t_max - t_min)``."""
    c = epoch / epochs if epochs > 0 else 0.0
    return t_min + 0.5 * (1.0 - math.cos(math.pi * c)) * (t_max - t_min)


def draw_ranks(count: int, k_minus_1: int, temperature: float, g: torch.Generator) -> torch.Tensor:
    """``k_minus_1`` distinct ranks of ``1..count-1`` drawn without replacement with
    P(r) ~ exp(-r / T): Gumbel top-k on the logits ``-r / T``."""
    r = torch.arange(1, count, dtype=torch.float64)
    u = torch.rand(count - 1, generator=g, dtype=torch.float64).clamp_(1e-12, 1 - 1e-12)
    gumbel = -torch.log(-torch.log(u))
    return torch.topk(-r / temperature + gumbel, k_minus_1).indices + 1


def _batches(bags: torch.Tensor, per_batch: int) -> list[list[int]]:
    flat = bags.reshape(-1)
    return [
        flat[i : i + per_batch].tolist() for i in range(0, len(flat) - per_batch + 1, per_batch)
    ]


class TemporalTemperatureBags(Sampler[list[int]]):
    """NTSSL's temporal-temperature bag sampler (batches of ``bags`` bags of ``k`` fragments).

    Every fragment is an anchor once per epoch; the fragments of its video, sorted by
    ``|position - anchor position|``, give ranks (rank 0: the closest, the anchor itself unless
    another fragment starts at the same place); rank 0 is kept and ``k - 1`` ranks are drawn by
    :func:`draw_ranks` at the temperature of :func:`bag_temperature`. Bags are shuffled, then cut
    into batches, the incomplete last one dropped. Seeded per epoch, so a resumed run draws the
    same bags."""

    def __init__(
        self,
        fragments: Sequence[Fragment],
        *,
        k: int,
        bags: int,
        t_min: float,
        t_max: float,
        epochs: int,
        seed: int,
    ) -> None:
        self.videos = [f.video for f in fragments]
        self.positions = torch.tensor([f.position for f in fragments], dtype=torch.float64)
        self.k, self.bags, self.t_min, self.t_max = k, bags, t_min, t_max
        self.epochs, self.seed = epochs, seed
        members: dict[str, list[int]] = defaultdict(list)
        for i, v in enumerate(self.videos):
            members[v].append(i)
        self.members = {v: torch.tensor(ix) for v, ix in members.items()}
        for ix in self.members.values():
            if len(ix) < k:
                first = fragments[int(ix[0])].frames[0].path
                raise BenchError(
                    f"NTSSL draws bags of {k} fragments within one video, but the video of "
                    f"{first} has {len(ix)}; lower sampler.k, fragment.length or fragment.stride"
                )
        if len(fragments) < bags:
            raise BenchError(
                f"NTSSL needs {bags} bags per batch (sampler.bags) but the training split has "
                f"{len(fragments)} fragments; lower sampler.bags"
            )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def temperature(self) -> float:
        return bag_temperature(self.epoch, self.epochs, self.t_min, self.t_max)

    def bag_indices(self) -> torch.Tensor:
        """``(fragments, k)``: this epoch's bags, in shuffled order."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        temperature = self.temperature
        out = torch.empty(len(self.videos), self.k, dtype=torch.long)
        for i, video in enumerate(self.videos):
            ix = self.members[video]
            order = torch.argsort((self.positions[ix] - self.positions[i]).abs(), stable=True)
            neighbours = ix[order]
            ranks = draw_ranks(len(ix), self.k - 1, temperature, g)
            out[i, 0] = neighbours[0]
            out[i, 1:] = neighbours[ranks]
        return out[torch.randperm(len(out), generator=g)]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(_batches(self.bag_indices(), self.bags * self.k))

    def __len__(self) -> int:
        return len(self.videos) // self.bags


class IdentityBags(Sampler[list[int]]):
    """The released ``MultiPosConBatchSampler``, for the supervised variant: batches of ``bags``
    identities x ``k`` of their fragments, drawn without replacement over the epoch (identities
    chosen with probability ~ fragments left, among those with ``k`` left), until fewer than
    ``bags`` identities have ``k`` left; each batch shuffled."""

    def __init__(self, fragments: Sequence[Fragment], *, k: int, bags: int, seed: int) -> None:
        self.labels = [f.pid for f in fragments]
        if any(p < 0 for p in self.labels):
            raise BenchError("NTSSL's supervised variant needs identity labels (loss.positives)")
        self.k, self.bags, self.seed = k, bags, seed
        self.set_epoch(0)
        enough = sum(1 for n in Counter(self.labels).values() if n >= k)
        if enough < bags:
            raise BenchError(
                f"NTSSL's supervised variant needs {bags} identities with {k} fragments each per "
                f"batch (sampler.bags x sampler.k), but {enough} have {k}; lower sampler.bags or "
                "sampler.k"
            )

    def set_epoch(self, epoch: int) -> None:
        """Draw the epoch's batches once (``len`` and iteration both read them)."""
        self.epoch = epoch
        self.batches = self._draw()

    def _draw(self) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        left: dict[int, list[int]] = defaultdict(list)
        for i, p in enumerate(self.labels):
            left[p].append(i)
        ids = sorted(left)
        pools = {p: [left[p][j] for j in torch.randperm(len(left[p]), generator=g)] for p in ids}
        batches = []
        while True:
            weights = torch.tensor(
                [len(pools[p]) if len(pools[p]) >= self.k else 0 for p in ids], dtype=torch.float64
            )
            if int((weights > 0).sum()) < self.bags:
                return batches
            chosen = torch.multinomial(weights, self.bags, replacement=False, generator=g)
            batch = []
            for c in chosen.tolist():
                batch += pools[ids[c]][: self.k]
                pools[ids[c]] = pools[ids[c]][self.k :]
            batches.append([batch[j] for j in torch.randperm(len(batch), generator=g)])

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


# --------------------------------------------------------------------------- network and losses


class TrackletEncoder(nn.Module):
    """Per-frame ResNet -> average pool -> Linear(C, dim) -> [CLS, frame tokens] -> post-norm
    transformer encoder (no positional encoding); ``(b, s, 3, H, W) -> (b, 1 + s, dim)``."""

    def __init__(
        self,
        depth: int,
        width: int,
        pretrained: str,
        dim: int,
        layers: int,
        heads: int,
        ffn: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.backbone = build_resnet(depth, width, last_stride=2, pretrained=pretrained)
        self.adapter = nn.Linear(self.backbone.out_channels, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        layer = nn.TransformerEncoderLayer(
            dim, heads, ffn, dropout, activation="relu", batch_first=True, norm_first=False
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """``(n, 3, H, W)`` -> ``(n, C)`` pooled backbone features."""
        return self.backbone(frames).mean(dim=(2, 3))

    def tokens(self, features: torch.Tensor) -> torch.Tensor:
        """``(b, s, C)`` frame features -> ``(b, 1 + s, dim)`` encoder outputs, CLS first."""
        x = self.adapter(features)
        return self.encoder(torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        b, s = clips.shape[:2]
        return self.tokens(self.frame_features(clips.flatten(0, 1)).view(b, s, -1))


class NTSSLNet(nn.Module):
    """The encoder and the projector (Linear, ReLU, Linear) applied to every token."""

    def __init__(self, c: Mapping[str, Any]) -> None:
        super().__init__()
        self.encoder = TrackletEncoder(
            c["model.depth"],
            c["model.width"],
            c["model.pretrained"],
            c["model.dim"],
            c["model.layers"],
            c["model.heads"],
            c["model.ffn"],
            c["model.dropout"],
        )
        dim = c["model.dim"]
        self.projector = nn.Sequential(
            nn.Linear(dim, c["model.proj_hidden"]),
            nn.ReLU(),
            nn.Linear(c["model.proj_hidden"], c["model.proj_dim"]),
        )


def mil_nce(z: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """MIL-NCE over a batch (Miech et al. 2020, as NTSSL uses it): rows ``z`` L2-normalised,
    ``s_ij = z_i . z_j / t``; per row ``logsumexp_{j != i} s_ij - logsumexp_{j != i, y_j = y_i}
    s_ij``, averaged. Every row needs a positive."""
    z = F.normalize(z, dim=-1)
    logits = z @ z.T / temperature
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, float("-inf"))
    positive = (labels[:, None] == labels[None, :]) & ~eye
    if not bool(positive.any(dim=1).all()):
        raise BenchError("MIL-NCE: a row of the batch has no positive")
    numerator = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
    return (torch.logsumexp(logits, dim=1) - numerator).mean()


def multi_positive_contrastive(
    z: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Multi-positive contrastive loss (Tian et al., StableRep, 2023; NTSSL's supervised loss):
    cross-entropy between the uniform distribution over a row's other same-label rows and the
    softmax of its similarities to every other row."""
    z = F.normalize(z, dim=-1)
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = (z @ z.T / temperature).masked_fill(eye, -1e9)
    target = ((labels[:, None] == labels[None, :]) & ~eye).float()
    target = target / target.sum(dim=1, keepdim=True).clamp(min=1.0)
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def ntssl_loss(
    z: torch.Tensor, k: int, temperature: float, weights: Sequence[float]
) -> tuple[torch.Tensor, list[float]]:
    """NTSSL's three MIL-NCE terms on projected tokens ``z`` ``(b, 1 + s, p)`` of ``b / k`` bags
    of ``k`` consecutive fragments: fragment CLS by bag, frame tokens by bag, frame tokens by
    fragment; ``sum_i w_i L_i`` (terms of weight 0 are skipped) and the three values."""
    b, s = z.shape[0], z.shape[1] - 1
    bag = torch.arange(b // k, device=z.device).repeat_interleave(k)
    frames = z[:, 1:].reshape(b * s, -1)
    terms = [
        lambda: mil_nce(z[:, 0], bag, temperature),
        lambda: mil_nce(frames, bag.repeat_interleave(s), temperature),
        lambda: mil_nce(frames, torch.arange(b, device=z.device).repeat_interleave(s), temperature),
    ]
    total = z.new_zeros(())
    values = []
    for w, term in zip(weights, terms, strict=True):
        if w == 0:
            values.append(float("nan"))
            continue
        value = term()
        total = total + w * value
        values.append(float(value.detach()))
    return total, values


# --------------------------------------------------------------------------- the method


@register_method
class NTSSL(Method):
    """NTSSL (Parolari et al.): temporal encoder of polyp tracklets, self-supervised by noisy
    temporal bags and MIL-NCE."""

    name = "ntssl"
    description = (
        "NTSSL (Parolari et al.): ResNet-50 + transformer tracklet encoder, self-supervised by "
        "temporal bags and a noise-aware MIL-NCE loss"
    )
    modalities = frozenset({"image", "clip"})
    supervision = "self"
    default_config = {
        "model": {
            "depth": 50,
            "width": 64,
            "pretrained": "imagenet",
            "dim": 256,
            "layers": 3,
            "heads": 8,
            "ffn": 1024,
            "dropout": 0.1,
            "proj_hidden": 256,
            "proj_dim": 128,
        },
        "fragment": {"length": 8, "stride": 4},
        "input": {"size": 232, "box_scale": 5.0, "normalize": "both"},
        "sampler": {"bags": 12, "k": 5, "t_min": 0.3, "t_max": 12.0},
        "loss": {"positives": "bag", "temperature": 0.07, "weights": [1.0, 1.0, 1.0]},
        "optim": {"lr": 1e-5, "weight_decay": 1e-4},
        "train": {"epochs": 50},
        "eval": {"stride": 4},
    }
    config_choices = {
        "model.depth": (18, 34, 50, 101),
        "input.normalize": ("test", "both", "none"),
        "loss.positives": POSITIVES,
    }
    config_ranges = {
        "model.width": ranges.AT_LEAST_ONE,
        "model.dim": ranges.AT_LEAST_ONE,
        "model.layers": ranges.AT_LEAST_ONE,
        "model.heads": ranges.AT_LEAST_ONE,
        "model.ffn": ranges.AT_LEAST_ONE,
        "model.dropout": ranges.Range(0, 1, high_open=True),
        "model.proj_hidden": ranges.AT_LEAST_ONE,
        "model.proj_dim": ranges.AT_LEAST_ONE,
        "fragment.length": ranges.AT_LEAST_ONE,
        "fragment.stride": ranges.AT_LEAST_ONE,
        "input.size": ranges.AT_LEAST_ONE,
        "input.box_scale": ranges.POSITIVE,
        "sampler.bags": ranges.AT_LEAST_TWO,
        "sampler.k": ranges.AT_LEAST_TWO,
        "sampler.t_min": ranges.POSITIVE,
        "sampler.t_max": ranges.POSITIVE,
        "loss.temperature": ranges.POSITIVE,
        "loss.weights": ranges.NON_NEGATIVE,
        "optim.lr": ranges.POSITIVE,
        "optim.weight_decay": ranges.NON_NEGATIVE,
        "train.epochs": ranges.NON_NEGATIVE,  # 0: the untrained encoder (ntssl-untrained)
        "eval.stride": ranges.AT_LEAST_ONE,
    }
    presets = {
        "paper": {},
        # CPU preset (synthetic-colonoscopy's 96x96 frames, ~40 training tracklets): a ResNet-18
        # trunk at quarter width, random init, 64-px crops, fragments every 2nd frame so each
        # video has at least 5, 6 bags of 5 per batch, lr 1e-4 (ten times the paper's, for a
        # random init and 20 epochs). Checked on a development copy of the data
        # (synthetic.seed=1), never on the test split of the default one.
        "quick": {
            "model": {"depth": 18, "width": 16, "pretrained": "none"},
            "fragment": {"stride": 2},
            "input": {"size": 64},
            "sampler": {"bags": 6},
            "optim": {"lr": 1e-4},
            "train": {"epochs": 20},
        },
    }
    default_preset = "paper"
    variants = {
        "ntssl-infonce": Variant(
            "NTSSL's encoder with one temporal positive and plain InfoNCE (no noise-aware bag)",
            {"loss": {"positives": "one"}},
        ),
        "ntssl-supcon": Variant(
            "NTSSL's encoder trained supervised-contrastive on identity labels (upper bound)",
            {"loss": {"positives": "identity"}},
        ),
        "ntssl-untrained": Variant(
            "NTSSL's encoder as initialised, not trained (the floor)", {"train": {"epochs": 0}}
        ),
    }

    def __init__(self, config: Mapping[str, Any], ctx: MethodContext) -> None:
        super().__init__(config, ctx)
        self.net: NTSSLNet | None = None
        self.facts: dict[str, Any] = {}

    @classmethod
    def supervision_for(cls, config: Mapping[str, Any]) -> str:
        """Identity labels for the supervised variant (``loss.positives=identity``), else none."""
        return "identity" if config.get("loss.positives") == "identity" else "self"

    @classmethod
    def preflight(cls, config: Mapping[str, Any]) -> None:
        """Stop before any data is read on weights not on disk or a batch that cannot be cut."""
        resolve_imagenet_weights(config["model.depth"], config["model.pretrained"])
        if config["model.dim"] % config["model.heads"]:
            raise BenchError(
                f"model.dim ({config['model.dim']}) must be divisible by model.heads "
                f"({config['model.heads']})"
            )
        if len(config["loss.weights"]) != 3:
            raise BenchError(
                "loss.weights takes three weights (fragment by bag, frames by bag, frames by "
                f"fragment), got {config['loss.weights']!r}"
            )
        if config["sampler.t_max"] < config["sampler.t_min"]:
            raise BenchError("sampler.t_max must be >= sampler.t_min")
        if config["loss.positives"] == "one" and config["sampler.bags"] * config["sampler.k"] < 4:
            raise BenchError("loss.positives=one needs sampler.bags x sampler.k >= 4 (two pairs)")

    def build(self) -> NTSSLNet:
        self.net = NTSSLNet(self.config).to(self.device)
        return self.net

    def _normalize(self, training: bool) -> bool:
        mode = self.config["input.normalize"]
        return mode == "both" or (mode == "test" and not training)

    def _bags(self, fragments: Sequence[Fragment]) -> tuple[Sampler[list[int]], int]:
        """The epoch's batches of fragments, and the fragments per bag."""
        c = self.config
        positives = c["loss.positives"]
        if positives == "identity":
            k = c["sampler.k"]
            return IdentityBags(fragments, k=k, bags=c["sampler.bags"], seed=self.ctx.seed), k
        k = 2 if positives == "one" else c["sampler.k"]
        bags = c["sampler.bags"] * c["sampler.k"] // k
        sampler = TemporalTemperatureBags(
            fragments,
            k=k,
            bags=bags,
            t_min=c["sampler.t_min"],
            t_max=c["sampler.t_max"],
            epochs=c["train.epochs"],
            seed=self.ctx.seed,
        )
        return sampler, k

    def loss(self, z: torch.Tensor, k: int) -> tuple[torch.Tensor, list[float]]:
        """The training loss of ``loss.positives`` on projected tokens ``(b, 1 + s, p)``."""
        c = self.config
        t = c["loss.temperature"]
        if c["loss.positives"] == "identity":
            raise AssertionError("the supervised loss needs labels: see fit()")
        weights = c["loss.weights"] if c["loss.positives"] == "bag" else [1.0, 0.0, 0.0]
        return ntssl_loss(z, k, t, weights)

    def fit(self, train: Sequence[Sample]) -> None:
        c = self.config
        fragments = make_fragments(train, c["fragment.length"], c["fragment.stride"])
        if not fragments:
            raise BenchError(
                f"no training tracklet holds a fragment of {c['fragment.length']} frames at "
                f"stride {c['fragment.stride']}; lower fragment.length or fragment.stride"
            )
        sampler, k = self._bags(fragments)
        net = self.build()
        optimizer = torch.optim.AdamW(
            net.parameters(), lr=c["optim.lr"], weight_decay=c["optim.weight_decay"]
        )
        frames = FragmentFrames(
            fragments, c["input.box_scale"], c["input.size"], self._normalize(training=True)
        )
        loader = DataLoader(
            frames,
            batch_sampler=sampler,
            num_workers=self.ctx.workers,
            worker_init_fn=seed_worker if self.ctx.workers > 0 else None,
        )
        pids = torch.tensor([f.pid for f in fragments])
        self.facts = {
            "train_fragments": len(fragments),
            "train_videos": len({f.video for f in fragments}),
            "supervision": self.supervision_for(c),
        }
        for epoch in self.ctx.epochs(c["train.epochs"], model=net, optimizer=optimizer):
            sampler.set_epoch(epoch)  # type: ignore[attr-defined]
            net.train()
            total, count, parts = 0.0, 0, torch.zeros(3, dtype=torch.float64)
            for clips, index in self.ctx.progress(loader, desc=f"epoch {epoch + 1}"):
                z = net.projector(net.encoder(clips.to(self.device)))
                if c["loss.positives"] == "identity":
                    labels = pids[index].to(self.device)
                    loss = multi_positive_contrastive(z[:, 0], labels, c["loss.temperature"])
                    values = [float(loss.detach()), float("nan"), float("nan")]
                else:
                    loss, values = self.loss(z, k)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, count = total + float(loss.detach()), count + 1
                parts += torch.tensor(values, dtype=torch.float64)
            scalars = {"loss": total / max(count, 1)}
            for name, value in zip(("fragment_bag", "frame_bag", "frame_fragment"), parts):
                if count and not math.isnan(float(value)):
                    scalars[name] = float(value) / count
            if isinstance(sampler, TemporalTemperatureBags):
                scalars["bag_T"] = sampler.temperature
            self.ctx.log_epoch(epoch, **scalars)

    @torch.no_grad()
    def embed_clips(self, clips: Sequence[Sequence[Sample]]) -> torch.Tensor:
        """The encoder's CLS output (before the projector) over each whole tracklet, every
        ``eval.stride``-th frame in frame order, as the released evaluation encodes it."""
        if self.net is None:
            raise RuntimeError("NTSSL.embed_clips() called before fit() or load_state_dict()")
        c = self.config
        net = self.net.encoder.eval()
        normalize, chunk = self._normalize(training=False), c["eval.batch_size"]
        rows = []
        for clip in self.ctx.progress(clips, desc="tracklets"):
            frames = list(clip)[:: c["eval.stride"]]  # the harness gives frames in order
            features = []
            for i in range(0, len(frames), chunk):
                x = torch.stack(
                    [
                        load_crop(s, c["input.box_scale"], c["input.size"], normalize)
                        for s in frames[i : i + chunk]
                    ]
                )
                features.append(net.frame_features(x.to(self.device)))
            rows.append(net.tokens(torch.cat(features)[None])[0, 0].cpu())
        return torch.stack(rows) if rows else torch.empty(0, c["model.dim"])

    def run_facts(self) -> dict[str, Any]:
        return dict(self.facts)

    def state_dict(self) -> dict[str, Any]:
        if self.net is None:
            raise RuntimeError("NTSSL has no trained network to save")
        return {"net": self.net.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.config["model.pretrained"] = "none"  # the weights come from the state
        self.build()
        assert self.net is not None
        self.net.load_state_dict(state["net"])
