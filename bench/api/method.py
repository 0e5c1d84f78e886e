"""The method API: what a method plugin implements, and what the harness does with it.

A method sees only the training split in :meth:`Method.fit`. The harness then asks it for the
query and gallery representations, in one of two ways, and computes every metric itself:

* :meth:`Method.embed` ``(samples) -> Tensor[N, D]``; the harness computes distances;
* :meth:`Method.score` ``(query, gallery) -> Tensor[Q, G]`` similarities (higher = more alike),
  for methods whose gallery encoding depends on the query (DMCL's released code fuses each
  gallery frame with the query's text).

Query and gallery samples reach the method with their identity hidden (``pid == -1``).

Optional, for attention maps in ``bench report`` (CNN image encoders):
:meth:`Method.attention_layer` names the layer whose activations are explained,
:meth:`Method.attention_inputs` preprocesses images, :meth:`Method.attention_forward` maps them
(differentiably) to one vector per sample.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from bench.api.context import MethodContext
from bench.api.ranges import Range
from bench.api.samples import Sample

#: What a method trains on: identity labels, or none (self-supervised).
SUPERVISIONS = ("identity", "self")


@dataclass(frozen=True)
class Variant:
    """A variant of a method family: config overrides and, if it drops one, modalities."""

    description: str
    overrides: dict[str, Any] = field(default_factory=dict)
    modalities: frozenset[str] | None = None


class Method(ABC):
    """Base class of every method plugin; register a subclass with ``@register_method``.

    Class attributes are plain data: ``name``; ``description`` (one line); ``modalities`` it
    needs; ``default_config`` (nested dict: its ``--set`` keys and defaults, i.e. the paper's
    settings); ``config_choices`` (allowed values per dotted key); ``config_ranges`` (allowed
    numeric ranges per dotted key, :mod:`bench.api.ranges`); ``presets`` (name -> overrides);
    ``default_preset``; ``variants`` (name -> :class:`Variant`, e.g. ablations);
    ``supports_ddp``: True when ``fit`` trains one model over all processes of a torchrun run
    (``ctx.distribute``, ``ctx.gather_batch``, a rank-aware sampler; see
    :mod:`bench.engine.distributed`).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    modalities: ClassVar[frozenset[str]] = frozenset({"image"})
    default_config: ClassVar[dict[str, Any]] = {}
    config_choices: ClassVar[dict[str, tuple[Any, ...]]] = {}
    config_ranges: ClassVar[dict[str, Range]] = {}
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    default_preset: ClassVar[str | None] = None
    variants: ClassVar[dict[str, Variant]] = {}
    supports_ddp: ClassVar[bool] = False
    #: What ``fit`` is given: ``"identity"`` (training samples with relabelled pids), or
    #: ``"self"`` for a self-supervised method: pid -1, opaque paths, clip and video ids, no
    #: text, so only the video, the tracklet and the frame order remain
    #: (:func:`bench.engine.test_side.training_view`). Model selection on labelled data, where a
    #: method wants it, is the harness's (``train.select=best-val``), never the method's.
    supervision: ClassVar[str] = "identity"

    def __init__(self, config: Mapping[str, Any], ctx: MethodContext) -> None:
        self.config = dict(config)
        self.ctx = ctx

    @property
    def device(self) -> torch.device:
        return self.ctx.device

    @classmethod
    def supervision_for(cls, config: Mapping[str, Any]) -> str:
        """What ``fit`` is given under ``config`` (one of :data:`SUPERVISIONS`): the class's
        :attr:`supervision` unless a config key switches a self-supervised family to identity
        labels (NTSSL's supervised-contrastive variant, its upper bound)."""
        return cls.supervision

    @classmethod
    def preflight(cls, config: Mapping[str, Any]) -> None:
        """Fail fast, before any data is read: e.g. pretrained weights named but not present."""
        return None

    @abstractmethod
    def fit(self, train: Sequence[Sample]) -> None:
        """Train on the training split (pids relabelled 0..N-1); use ``self.ctx.epochs``."""

    def embed(self, samples: Sequence[Sample]) -> torch.Tensor:
        """Return one feature row per sample, ``Tensor[N, D]`` on any device."""
        raise NotImplementedError(f"method {self.name!r} does not implement embed()")

    def score(self, query: Sequence[Sample], gallery: Sequence[Sample]) -> torch.Tensor:
        """Return similarities ``Tensor[Q, G]``, higher meaning more likely the same identity."""
        raise NotImplementedError(f"method {self.name!r} does not implement score()")

    def embed_clips(self, clips: Sequence[Sequence[Sample]]) -> torch.Tensor:
        """Optional: one row per clip (tracklet), ``Tensor[C, D]``, each clip's frames given in
        frame order, for a temporal encoder that sees a whole tracklet at once. At the clip level
        (``protocol.level=clip``) the harness asks for this when a method implements it, else it
        mean-pools the frame features of :meth:`embed`."""
        raise NotImplementedError(f"method {self.name!r} does not implement embed_clips()")

    @property
    def embeds_clips(self) -> bool:
        """True when the method implements :meth:`embed_clips`."""
        return type(self).embed_clips is not Method.embed_clips

    @property
    def answers(self) -> str:
        """``"embed"``, ``"score"`` or (a method that only embeds whole tracklets)
        ``"embed_clips"``: how the harness asks for representations."""
        if type(self).embed is not Method.embed:
            return "embed"
        if type(self).score is not Method.score:
            return "score"
        if self.embeds_clips:
            return "embed_clips"
        raise TypeError(
            f"method {self.name!r} implements none of embed(), score() and embed_clips()"
        )

    def run_facts(self) -> dict[str, Any]:
        """Facts about this run that its record keeps under ``method_facts`` (JSON-able plain
        data; e.g. the share of texts the tokenizer cut). Asked once, after evaluation."""
        return {}

    def attention_layer(self) -> torch.nn.Module | None:
        """The image encoder's last convolutional stage (output ``(N, C, h, w)``), whose
        activations ``bench report`` turns into heat maps; ``None`` (default): the method has no
        CNN stage to explain and reports show no attention maps.

        A method that returns a module also implements :meth:`attention_inputs` and
        :meth:`attention_forward`, and the forward pass must run through that module.
        """
        return None

    def attention_inputs(self, samples: Sequence[Sample]) -> torch.Tensor:
        """The batch ``(N, 3, H, W)`` on :attr:`device` that :meth:`attention_forward` takes:
        the images of ``samples`` preprocessed as at test time (resize, normalise)."""
        raise NotImplementedError(f"method {self.name!r} does not implement attention_inputs()")

    def attention_forward(self, inputs: torch.Tensor, samples: Sequence[Sample]) -> torch.Tensor:
        """One vector per sample, ``Tensor[N, D]``, computed from ``inputs`` with autograd on and
        the network in eval mode, through :meth:`attention_layer`.

        The vector is what the method ranks with (its embedding; for a method whose embedding
        also reads the text, ``samples`` carry it). Gradient-based maps explain any scalar
        function of these rows, e.g. the cosine similarity of a gallery row to its query's row;
        EigenCAM needs no target at all.
        """
        raise NotImplementedError(f"method {self.name!r} does not implement attention_forward()")

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild the trained method (weights and shapes)."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state returned by :meth:`state_dict` into a fresh instance."""


@dataclass(frozen=True)
class MethodSpec:
    """What ``--method NAME`` resolves to: a method family, and the variant when the name is one."""

    name: str
    family: type[Method]
    variant: Variant | None

    @property
    def description(self) -> str:
        return self.variant.description if self.variant else self.family.description

    @property
    def modalities(self) -> frozenset[str]:
        if self.variant is not None and self.variant.modalities is not None:
            return self.variant.modalities
        return self.family.modalities

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self.variant.overrides) if self.variant else {}
