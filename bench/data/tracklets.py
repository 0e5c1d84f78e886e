"""Polyp tracklets from COCO-style colonoscopy annotations, as NTSSL's released code builds them.

The layout (REAL-Colon as NTSSL releases it): ``<root>/images/*.jpg`` and
``<root>/annotations/instances_{train,val,test}.json``. Images carry ``file_name``, ``frame_id``,
``sequence_id`` and ``dataset_id``; annotations carry ``image_id``, ``bbox`` (x, y, w, h in
pixels), ``identity_id`` (a string such as ``001-013_2``: video ``001-013``, its polyp 2) and
optionally ``histology`` and ``size``. One annotation is one instance (a polyp in a frame).

Tracklets (:func:`build_tracklets`): per identity, instances sorted by ``frame_id``; the next
instance joins the current tracklet when its frame follows within ``max_gap`` frames (1) and its
box overlaps the previous one with IoU >= ``min_iou`` (0.1), else it starts a new tracklet.
Tracklets shorter than ``min_length`` frames are dropped (NTSSL: 30). The video of an identity
is its id's part before the first ``_``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.api.samples import Sample
from bench.data.files import read_json
from bench.errors import RAISE, DatasetError, Problems

SPLIT_FILES = {
    "train": "instances_train.json",
    "val": "instances_val.json",
    "test": "instances_test.json",
}


@dataclass(frozen=True)
class Instance:
    """One annotated polyp in one frame."""

    path: str
    frame_id: int
    sequence_id: Any
    identity: str
    box: tuple[float, float, float, float]  # x, y, w, h
    histology: str | None = None
    size: float | str | None = None

    @property
    def video(self) -> str:
        return video_of(self.identity)


def video_of(identity: str) -> str:
    """The video an identity was seen in: its id before the first ``_`` (``001-013_2`` ->
    ``001-013``), as NTSSL's code reads REAL-Colon ids."""
    return identity.split("_")[0]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_instances(path: Path, images_dir: Path, problems: Problems = RAISE) -> list[Instance]:
    """The instances of one annotation file, in the file's order. A malformed entry is reported
    to ``problems`` naming the file and the entry (the default raises on the first) and left
    out; a file that is not COCO JSON is a DatasetError."""
    data = read_json(path, what="annotation file")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DatasetError(f"annotation file {path}: expected a COCO object with 'images'")
    if not isinstance(data.get("annotations"), list):
        raise DatasetError(f"annotation file {path}: expected a COCO object with 'annotations'")
    images: dict[Any, dict[str, Any]] = {}
    for i, img in enumerate(data["images"]):
        where = f"{path}: images[{i}]"
        if (
            not isinstance(img, dict)
            or "id" not in img
            or not isinstance(img.get("file_name"), str)
        ):
            problems.report(where, f"{where} needs an 'id' and a 'file_name'")
            continue
        if isinstance(img.get("frame_id"), bool) or not isinstance(img.get("frame_id"), int):
            problems.report(where, f"{where} ({img['file_name']}) needs an integer 'frame_id'")
            continue
        if img["id"] in images:
            problems.report(where, f"{where}: image id {img['id']!r} is listed twice")
            continue
        images[img["id"]] = img
    out = []
    for i, ann in enumerate(data["annotations"]):
        where = f"{path}: annotations[{i}]"
        if not isinstance(ann, dict):
            problems.report(where, f"{where} is not an object")
            continue
        img = images.get(ann.get("image_id"))
        if img is None:
            problems.report(where, f"{where} names image_id {ann.get('image_id')!r}, not listed")
            continue
        identity = ann.get("identity_id")
        if not isinstance(identity, str) or not identity:
            problems.report(where, f"{where} needs a string 'identity_id', got {identity!r}")
            continue
        box = ann.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and all(_number(v) for v in box)):
            problems.report(where, f"{where} needs a 'bbox' of 4 numbers (x, y, w, h), got {box!r}")
            continue
        if box[2] <= 0 or box[3] <= 0:
            problems.report(where, f"{where}: 'bbox' {box} has no area")
            continue
        histology = ann.get("histology")
        out.append(
            Instance(
                path=str(images_dir / img["file_name"]),
                frame_id=int(img["frame_id"]),
                sequence_id=img.get("sequence_id"),
                identity=identity,
                box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                histology=None if histology is None else str(histology),
                size=ann.get("size"),
            )
        )
    return out


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes (0 when they only touch)."""
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = min(ax2, bx2) - max(a[0], b[0])
    h = min(ay2, by2) - max(a[1], b[1])
    if w < 0 or h < 0:
        return 0.0
    inter = w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def build_tracklets(
    instances: Sequence[Instance], max_gap: int = 1, min_iou: float = 0.1, min_length: int = 1
) -> list[list[Instance]]:
    """Tracklets in the order of NTSSL's code: identities in sorted order, each identity's
    tracklets in frame order (module docstring); those shorter than ``min_length`` dropped."""
    by_identity: dict[str, list[tuple[int, int, Instance]]] = {}
    for index, inst in enumerate(instances):
        by_identity.setdefault(inst.identity, []).append((inst.frame_id, index, inst))
    tracklets: list[list[Instance]] = []
    for identity in sorted(by_identity):
        current: list[Instance] = []
        for _, _, inst in sorted(by_identity[identity], key=lambda t: (t[0], t[1])):
            if current and (
                abs(inst.frame_id - current[-1].frame_id) > max_gap
                or iou(inst.box, current[-1].box) < min_iou
            ):
                tracklets.append(current)
                current = []
            current.append(inst)
        if current:
            tracklets.append(current)
    return [t for t in tracklets if len(t) >= min_length]


def tracklet_samples(
    tracklets: Sequence[Sequence[Instance]], split: str, pid_of: dict[str, int]
) -> list[Sample]:
    """One sample per instance: ``clip`` the tracklet (``test-00012``, numbered in
    :func:`build_tracklets`' order), ``frame`` its frame id, ``video``, ``box``; ``pid`` from
    ``pid_of`` (identity string -> integer); camid 0 (one camera per video)."""
    return [
        Sample(
            path=inst.path,
            pid=pid_of[inst.identity],
            camid=0,
            clip=f"{split}-{k:05d}",
            frame=inst.frame_id,
            video=inst.video,
            box=inst.box,
        )
        for k, tracklet in enumerate(tracklets)
        for inst in tracklet
    ]


def tracklet_labels(tracklets: Sequence[Sequence[Instance]], split: str) -> dict[str, dict]:
    """Per tracklet (its clip id), the polyp's ``histology`` and ``size`` where annotated: what
    the probes predict (never given to a method)."""
    labels = {}
    for k, tracklet in enumerate(tracklets):
        first = tracklet[0]
        hist = next((i.histology for i in tracklet if i.histology is not None), None)
        size = next((i.size for i in tracklet if i.size is not None), None)
        labels[f"{split}-{k:05d}"] = {"identity": first.identity, "histology": hist, "size": size}
    return labels
