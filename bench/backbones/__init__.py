"""Encoders that turn an input into features, with their pretrained weights found offline.

* :mod:`~bench.backbones.resnet`: ResNet trunks (torchvision layout) and ImageNet checkpoints
  from the torch hub cache or a local file;
* :mod:`~bench.backbones.bert`: BERT text encoders from a config or a local pretrained folder,
  WordPiece tokenizers trained on a dataset's texts, and a cache of frozen token features.

Nothing here downloads: weights that are not on disk are a
:class:`~bench.errors.WeightsNotFoundError` naming the config key to set.
"""

from bench.backbones.bert import (
    TextEncoder,
    TextFeatureCache,
    build_bert,
    load_pretrained_bert,
    resolve_bert,
    train_wordpiece_tokenizer,
)
from bench.backbones.resnet import (
    ResNetBackbone,
    build_resnet,
    imagenet_checkpoint_names,
    load_backbone_weights,
    resolve_imagenet_weights,
)

__all__ = [
    "ResNetBackbone",
    "TextEncoder",
    "TextFeatureCache",
    "build_bert",
    "build_resnet",
    "imagenet_checkpoint_names",
    "load_backbone_weights",
    "load_pretrained_bert",
    "resolve_bert",
    "resolve_imagenet_weights",
    "train_wordpiece_tokenizer",
]
