"""``bench list methods|datasets``: what is registered."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    ls = sub.add_parser("list", help="list registered methods or datasets")
    ls.set_defaults(handler=main)
    ls.add_argument(
        "what",
        choices=["methods", "datasets"],
        help="methods: name, description, variants, presets, modalities needed; "
        "datasets: name, description, modalities provided, protocol",
    )


def main(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from bench.plugins import dataset_names, get_dataset, method_families

    if args.what == "methods":
        rows = []
        for cls in method_families():
            presets = ", ".join(cls.presets) or "-"
            needs = ", ".join(sorted(cls.modalities))
            rows.append([cls.name, cls.description, ", ".join(cls.variants) or "-", presets, needs])
            for name, variant in cls.variants.items():
                mods = variant.modalities if variant.modalities is not None else cls.modalities
                rows.append(
                    [
                        name,
                        variant.description,
                        f"variant of {cls.name}",
                        presets,
                        ", ".join(sorted(mods)),
                    ]
                )
        headers = ["method", "description", "variants", "presets", "needs"]
    else:
        rows = []
        for name in dataset_names():
            cls = get_dataset(name)
            rows.append([name, cls.description, ", ".join(sorted(cls.modalities)), cls.protocol])
        headers = ["dataset", "description", "provides", "protocol"]
    print(tabulate(rows, headers=headers, tablefmt="github"))
    return 0
