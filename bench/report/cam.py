"""Attention maps over a method's last convolutional stage, with the ``grad-cam`` package
(jacobgil/pytorch-grad-cam, the package DMCL's Fig. 6 used for its EigenGradCAM maps).

* ``eigengradcam`` (the report's default, as in DMCL's Fig. 6): the first principal component
  of gradients x activations, so it shows what raises the target.
* ``eigencam`` (Muhammad and Yeasin 2020): the first principal component of the stage's
  activations ``(h*w, C)``; needs no target. It shows where the stage responds most, which
  need not be what the ranking uses: on the quick BoT polyp model the strongest layer4
  responses sit on the feature map's border (its top row), not on the polyp.
* ``gradcam`` (Selvaraju et al. 2017): activations weighted by their spatially averaged gradients.

The gradient-based kinds explain a scalar per image: the cosine similarity of the image's
vector (:meth:`~bench.api.method.Method.attention_forward`) to a reference vector, in reports the
query's vector for a gallery image and the top-1 gallery vector for the query.

Deviation from the package: the principal component's sign is arbitrary (an SVD returns
``v`` or ``-v``); the package keeps whatever the SVD gives (its optional correction flips by the
larger extreme). Here the sign is chosen so the map correlates positively with the channel sum
of what was decomposed (activations, or gradients x activations): the map then shows where the
stage responds, not where it is silent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from bench.api.samples import Sample
from bench.errors import BenchError

CAM_KINDS = ("eigencam", "eigengradcam", "gradcam")


def _import_grad_cam():
    try:
        import pytorch_grad_cam
    except ImportError as exc:
        raise BenchError(
            "attention maps need the grad-cam package: pip install 'reid-bench[report]' "
            "(or pass --cam none)"
        ) from exc
    return pytorch_grad_cam


def principal_projection(maps: np.ndarray) -> np.ndarray:
    """``(N, C, h, w)`` -> ``(N, h, w)``: each image's ``(h*w, C)`` matrix, centred, projected on
    its first right singular vector, signed to correlate positively with the channel sum."""
    out = []
    for a in np.nan_to_num(maps.astype(np.float64)):
        flat = a.reshape(a.shape[0], -1).T
        centred = flat - flat.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        proj = centred @ vt[0]
        total = flat.sum(axis=1)
        if np.dot(proj - proj.mean(), total - total.mean()) < 0:
            proj = -proj
        out.append(proj.reshape(a.shape[1:]))
    return np.asarray(out, dtype=np.float32)


class _Explained(nn.Module):
    """What grad-cam calls: ``inputs -> method.attention_forward(inputs, samples)``."""

    def __init__(self, method, layer: nn.Module, samples: Sequence[Sample]) -> None:
        super().__init__()
        self.layer = layer  # a registered child, so grad-cam finds the parameters' device
        self._method = method
        self._samples = list(samples)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self._method.attention_forward(inputs, self._samples)


class _CosineTarget:
    """grad-cam target: cosine similarity of one image's output row with a fixed vector."""

    def __init__(self, reference: torch.Tensor) -> None:
        self.reference = reference

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cosine_similarity(output, self.reference.to(output), dim=0)


def _cam_classes():
    gc = _import_grad_cam()

    class SignedEigenCAM(gc.EigenCAM):
        def get_cam_image(self, input_tensor, target_layer, targets, activations, grads, smooth):
            return principal_projection(activations)

    class SignedEigenGradCAM(gc.EigenGradCAM):
        def get_cam_image(self, input_tensor, target_layer, targets, activations, grads, smooth):
            return principal_projection(grads * activations)

    return {"eigencam": SignedEigenCAM, "eigengradcam": SignedEigenGradCAM, "gradcam": gc.GradCAM}


def supports_attention(method) -> bool:
    """Whether ``method`` exposes a CNN stage (:meth:`~bench.api.method.Method.attention_layer`)."""
    return method.attention_layer() is not None


def attention_maps(
    method,
    samples: Sequence[Sample],
    kind: str = "eigencam",
    references: torch.Tensor | None = None,
) -> np.ndarray:
    """Heat maps ``(N, H, W)`` in [0, 1] at the method's input size, one per sample.

    ``references`` ``(N, D)``: per sample the vector whose cosine similarity the gradient-based
    kinds explain (ignored by ``eigencam``; required by the others).
    """
    if kind not in CAM_KINDS:
        raise BenchError(f"unknown attention map kind {kind!r}; choose one of {CAM_KINDS}")
    layer = method.attention_layer()
    if layer is None:
        raise BenchError(f"method {method.name!r} does not expose a CNN stage")
    if kind != "eigencam" and references is None:
        raise ValueError(f"{kind} needs reference vectors (the similarity target)")
    inputs = method.attention_inputs(samples)
    model = _Explained(method, layer, samples)
    cam_cls = _cam_classes()[kind]
    targets = None
    if references is not None and kind != "eigencam":
        targets = [_CosineTarget(r.detach()) for r in references]
    cam = cam_cls(model=model, target_layers=[layer])
    try:  # not grad-cam's context manager: its __exit__ swallows IndexError
        with torch.enable_grad():
            maps = cam(input_tensor=inputs, targets=targets)
    finally:
        cam.activations_and_grads.release()
    return np.asarray(maps, dtype=np.float32)


def embeddings(method, samples: Sequence[Sample]) -> torch.Tensor:
    """``attention_forward`` rows of ``samples`` (no gradients): the references for targets."""
    with torch.no_grad():
        return method.attention_forward(method.attention_inputs(samples), samples).detach()
