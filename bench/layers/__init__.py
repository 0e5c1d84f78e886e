"""Small network blocks that several methods share.

* :mod:`~bench.layers.bnneck`: BoT's BNNeck head and its initialisation;
* :mod:`~bench.layers.fusion`: a pre- or post-norm self-attention encoder fusing token sequences
  (DMCL's image and text tokens);
* :mod:`~bench.layers.positions`: sinusoidal positional encodings.
"""

from bench.layers.bnneck import BNNeck, weights_init_classifier, weights_init_kaiming
from bench.layers.fusion import FusionEncoder, FusionLayer, FusionLayerOptions
from bench.layers.positions import sinusoidal_positions

__all__ = [
    "BNNeck",
    "FusionEncoder",
    "FusionLayer",
    "FusionLayerOptions",
    "sinusoidal_positions",
    "weights_init_classifier",
    "weights_init_kaiming",
]
