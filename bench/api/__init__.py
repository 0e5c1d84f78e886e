"""The contracts: what a method or dataset plugin implements and what they exchange.

* :mod:`~bench.api.samples`: :class:`Sample` and :class:`Splits`, the data every adapter makes;
* :mod:`~bench.api.dataset`: :class:`DatasetAdapter`, a released layout -> splits;
* :mod:`~bench.api.method`: :class:`Method` (``fit``, then ``embed`` or ``score``), its
  :class:`Variant` s, and :class:`MethodSpec` (a family and maybe a variant: what a name means);
* :mod:`~bench.api.ranges`: :class:`Range`, the allowed values of a numeric config key;
* :mod:`~bench.api.context`: :class:`MethodContext`, what a method may use of the harness;
* :mod:`~bench.api.registry`: the registries, filled by ``@register_method`` and
  ``@register_dataset``.

Nothing here imports the machinery that uses them.
"""

from bench.api.context import MethodContext, Stateful
from bench.api.dataset import DatasetAdapter
from bench.api.method import Method, MethodSpec, Variant
from bench.api.ranges import Range
from bench.api.registry import register_dataset, register_method
from bench.api.samples import JUNK_PID, MODALITIES, Sample, Splits

__all__ = [
    "JUNK_PID",
    "MODALITIES",
    "DatasetAdapter",
    "Method",
    "MethodContext",
    "MethodSpec",
    "Range",
    "Sample",
    "Splits",
    "Stateful",
    "Variant",
    "register_dataset",
    "register_method",
]
