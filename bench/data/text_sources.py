"""Text sources -> ``{key: text}`` mappings for :func:`bench.data.captions.attach_text`.

A key is an image file name (``0002_c1s1_000451_03.jpg``) or an identity (``0002``); a sample
takes the text of its file name first, then of its identity.

- Attribute annotations of Lin et al. 2019 ("Improving person re-identification by attribute
  and identity learning", Pattern Recognition): ``market_attribute.mat`` (27 attributes per
  Market-1501 identity) and ``duke_attribute.mat`` (23 per DukeMTMC-reID identity), read by
  :func:`read_attributes` and turned into one templated English sentence per identity by
  :func:`attribute_captions` (keys: 4-digit identities).
- CUHK-PEDES captions (Li et al. 2017, "Person Search with Natural Language Description"):
  ``reid_raw.json``, a list of ``{"file_path", "captions", "id", "split", "processed_tokens"}``
  records whose ``file_path`` starts with the source dataset (``Market/0002_c1s1_000451_03.jpg``,
  ``CUHK03/...``, ``CUHK01/...``, ``VIPER/...``); :func:`read_cuhk_pedes` keeps one source and keys
  by the image's base name (keys: file names).
- A plain captions file, CSV or JSON: :func:`read_captions` (from :mod:`bench.data.captions`).

:func:`read_text_source` reads any of them by kind name. Every malformed input raises
:class:`~bench.errors.DatasetError` naming the file and the field at fault.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from bench.data.captions import read_captions
from bench.data.files import existing_file, listing, read_json
from bench.errors import DatasetError

__all__ = [
    "ATTRIBUTES",
    "CODING",
    "DUKE_ATTRIBUTES",
    "MARKET_ATTRIBUTES",
    "PEDES_SOURCES",
    "TEMPLATES",
    "TEXT_SOURCES",
    "AttributeAnnotations",
    "attribute_captions",
    "describe_identity",
    "read_attributes",
    "read_captions",
    "read_cuhk_pedes",
    "read_text_source",
]

# ---------------------------------------------------------------------------------------------
# Attribute annotations (Lin et al. 2019)

UP_COLOURS = {
    "market": ("black", "white", "red", "purple", "yellow", "gray", "blue", "green"),
    "duke": ("black", "white", "red", "purple", "gray", "blue", "green", "brown"),
}
DOWN_COLOURS = {
    "market": ("black", "white", "pink", "purple", "yellow", "gray", "blue", "green", "brown"),
    "duke": ("black", "white", "red", "gray", "blue", "green", "brown"),
}
#: The attribute fields of each file, in the order of its README.
MARKET_ATTRIBUTES = (
    "gender", "hair", "up", "down", "clothes", "hat", "backpack", "bag", "handbag", "age",
    *(f"up{c}" for c in UP_COLOURS["market"]),
    *(f"down{c}" for c in DOWN_COLOURS["market"]),
)  # fmt: skip
DUKE_ATTRIBUTES = (
    "gender", "top", "boots", "hat", "backpack", "bag", "handbag", "shoes",
    *(f"up{c}" for c in UP_COLOURS["duke"]),
    *(f"down{c}" for c in DOWN_COLOURS["duke"]),
)  # fmt: skip
ATTRIBUTES = {"market": MARKET_ATTRIBUTES, "duke": DUKE_ATTRIBUTES}
#: Value coding (the READMEs): 1 = no / first option, 2 = yes / second option; ``age`` 1-4
#: (young, teenager, adult, old). 0 marks an attribute left unannotated (``top`` of identities
#: 0370 and 0679 in duke_attribute.mat); it is left out of the sentence.
CODING: dict[str, tuple[int, ...]] = {"age": (1, 2, 3, 4)}
BINARY = (1, 2)
UNANNOTATED = 0
SPLITS = ("train", "test")
_ALIASES = {
    "market": "market",
    "market1501": "market",
    "duke": "duke",
    "dukemtmc": "duke",
    "dukemtmc-reid": "duke",
}


def _dataset_name(dataset: str) -> str:
    key = str(dataset).lower()
    if key not in _ALIASES:
        raise DatasetError(
            f"unknown attribute dataset {dataset!r}; use one of market, duke "
            f"(or {', '.join(k for k in _ALIASES if k not in ('market', 'duke'))})"
        )
    return _ALIASES[key]


@dataclass(frozen=True)
class AttributeAnnotations:
    """One attribute file: ``dataset`` (``market`` or ``duke``) and per split (``train``,
    ``test``) the codes of each identity: ``{"0002": {"gender": 1, "age": 2, ...}}``."""

    path: Path
    dataset: str
    splits: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    @property
    def train(self) -> dict[str, dict[str, int]]:
        return self.splits["train"]

    @property
    def test(self) -> dict[str, dict[str, int]]:
        return self.splits["test"]


def _fields(value: Any) -> tuple[str, ...]:
    names = getattr(getattr(value, "dtype", None), "names", None)
    return tuple(names or ())


def _struct(value: Any) -> Any:
    """The single element of a MATLAB 1x1 struct as loaded by ``scipy.io.loadmat``."""
    arr = np.asarray(value)
    return arr.reshape(-1)[0] if arr.size == 1 else None


def _identity(path: Path, split: str, i: int, cell: Any) -> str:
    item = np.asarray(cell).reshape(-1)
    value = item[0] if item.size == 1 else None
    if isinstance(value, str) and value.strip().isdigit():
        return f"{int(value):04d}"
    if isinstance(value, (int, np.integer)) or (
        isinstance(value, (float, np.floating)) and float(value).is_integer()
    ):
        return f"{int(value):04d}"
    raise DatasetError(
        f"{path}: {split}.image_index entry {i + 1} is not an identity ({cell!r}); expected "
        f"identity strings such as '0002'"
    )


def read_attributes(path: Path, dataset: str | None = None) -> AttributeAnnotations:
    """Read ``market_attribute.mat`` or ``duke_attribute.mat`` (MATLAB v5).

    The file holds one struct (``market_attribute`` / ``duke_attribute``) with the fields
    ``train`` and ``test``; each is a struct with one 1 x N array per attribute
    (:data:`ATTRIBUTES`) and ``image_index``, the N identities. ``dataset`` (``market`` or
    ``duke``) is taken from the variable name, else from the attribute fields, unless given.
    Checks that every attribute is there, has N values, and that each value is in the coding
    (:data:`CODING`).
    """
    from scipy.io import loadmat

    path = existing_file(path, "attribute file")
    try:
        mat = loadmat(str(path))
    except NotImplementedError as e:
        raise DatasetError(
            f"attribute file {path} is MATLAB v7.3; expected the v5 file of Lin et al."
        ) from e
    except Exception as e:  # scipy raises ValueError/TypeError/OSError on a damaged file
        raise DatasetError(f"cannot read attribute file {path}: {type(e).__name__}: {e}") from e
    variables = [k for k in mat if not k.startswith("__")]
    named = [k for k in variables if k.endswith("_attribute")]
    if len(named) == 1:
        var = named[0]
    elif len(variables) == 1:
        var = variables[0]
    else:
        raise DatasetError(
            f"attribute file {path} should hold one struct such as 'market_attribute' "
            f"(variables: {', '.join(variables) or '(none)'})"
        )
    top = _struct(mat[var])
    for split in SPLITS:
        if split not in _fields(top):
            raise DatasetError(
                f"attribute file {path}: {var!r} lacks the field {split!r} "
                f"(fields: {', '.join(_fields(top)) or '(not a struct)'})"
            )
    parts = {split: _struct(top[split]) for split in SPLITS}
    if dataset is None:
        guess = {"market_attribute": "market", "duke_attribute": "duke"}.get(var)
        if guess is None:
            present = set(_fields(parts["train"]))
            found = [name for name, attrs in ATTRIBUTES.items() if set(attrs) <= present]
            if len(found) != 1:
                raise DatasetError(
                    f"cannot tell whether {path} holds Market-1501 or DukeMTMC-reID attributes "
                    f"(train fields: {', '.join(sorted(present)) or '(none)'}); pass the dataset"
                )
            guess = found[0]
        dataset = guess
    dataset = _dataset_name(dataset)
    splits = {}
    for split, part in parts.items():
        splits[split] = _read_split(path, dataset, split, part)
    both = set(splits["train"]) & set(splits["test"])
    if both:
        raise DatasetError(f"attribute file {path}: identity {min(both)} is in both train and test")
    return AttributeAnnotations(path, dataset, splits)


def _read_split(path: Path, dataset: str, split: str, part: Any) -> dict[str, dict[str, int]]:
    present = _fields(part)
    for name in (*ATTRIBUTES[dataset], "image_index"):
        if name not in present:
            raise DatasetError(
                f"attribute file {path}: {split} lacks the {dataset} attribute {name!r} "
                f"(fields: {', '.join(present) or '(not a struct)'})"
            )
    cells = np.asarray(part["image_index"]).reshape(-1)
    ids = [_identity(path, split, i, c) for i, c in enumerate(cells)]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DatasetError(f"attribute file {path}: {split}.image_index lists {dup} twice")
    table: dict[str, dict[str, int]] = {i: {} for i in ids}
    for name in ATTRIBUTES[dataset]:
        values = np.asarray(part[name])
        if (
            values.dtype.kind not in "iuf"
            or values.size != len(ids)
            or (values.ndim == 2 and min(values.shape) > 1)
        ):
            raise DatasetError(
                f"attribute file {path}: {split}.{name} should be 1 x {len(ids)} numbers (one "
                f"per image_index entry), got shape {tuple(values.shape)} of {values.dtype}"
            )
        allowed = CODING.get(name, BINARY)
        for identity, value in zip(ids, values.reshape(-1)):
            code = int(value) if float(value).is_integer() else None
            if code is None or (code not in allowed and code != UNANNOTATED):
                raise DatasetError(
                    f"attribute file {path}: {split}.{name} of identity {identity} is "
                    f"{value.item()!r}; "
                    f"the coding is {', '.join(map(str, allowed))} ({UNANNOTATED} = unannotated)"
                )
            table[identity][name] = code
    return table


# -- sentences


def _article(phrase: str) -> str:
    return f"{'an' if phrase[:1].lower() in 'aeiou' else 'a'} {phrase}"


def _join(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _colours(attrs: Mapping[str, int], prefix: str, colours: Sequence[str]) -> str:
    return _join([c for c in colours if attrs.get(f"{prefix}{c}") == 2])


def _words(*parts: str) -> str:
    return " ".join(p for p in parts if p)


_AGED = {  # (age code, gender code) -> noun phrase; gender 0 = unannotated
    **{(1, g): n for g, n in ((1, "young boy"), (2, "young girl"), (0, "young child"))},
    **{(2, g): n for g, n in ((1, "teenage boy"), (2, "teenage girl"), (0, "teenager"))},
    **{(3, g): n for g, n in ((1, "man"), (2, "woman"), (0, "adult"))},
    **{(4, g): n for g, n in ((1, "elderly man"), (2, "elderly woman"), (0, "elderly person"))},
    **{(0, g): n for g, n in ((1, "man"), (2, "woman"), (0, "person"))},
}


def _parts(attrs: Mapping[str, int], dataset: str) -> dict[str, Any]:
    """The phrases a sentence is made of: subject, pronoun, hair, garments, carried items."""
    gender = attrs.get("gender", UNANNOTATED)
    subject = _AGED[(attrs.get("age", UNANNOTATED), gender)]
    pronoun, be = {1: ("he", "is"), 2: ("she", "is")}.get(gender, ("they", "are"))
    hair = {1: "short hair", 2: "long hair"}.get(attrs.get("hair", UNANNOTATED), "")
    up = _colours(attrs, "up", UP_COLOURS[dataset])
    down = _colours(attrs, "down", DOWN_COLOURS[dataset])
    items = []
    if dataset == "market":
        sleeve = {1: "long-sleeved", 2: "short-sleeved"}.get(attrs["up"], "")
        if sleeve or up:
            items.append(_article(_words(sleeve, up, "top")))
        length = {1: "long", 2: "short"}.get(attrs["down"], "")
        kind = attrs["clothes"]
        if kind == 2:  # pants: long -> trousers, short -> shorts
            items.append(_words(down, {1: "trousers", 2: "shorts"}.get(attrs["down"], "trousers")))
        elif kind == 1:  # "dress", the lower-body garment type: a skirt
            items.append(_article(_words(length, down, "skirt")))
        elif down:
            items.append(_words(down, "bottoms"))
    else:
        length = {1: "short", 2: "long"}.get(attrs["top"], "")
        if length or up:
            items.append(_article(_words(length, up, "top")))
        if down:
            items.append(_words(down, "bottoms"))
        shade = {1: "dark", 2: "light-coloured"}.get(attrs["shoes"], "")
        footwear = "boots" if attrs["boots"] == 2 else "shoes" if shade else ""
        if footwear:
            items.append(_words(shade, footwear))
    if attrs.get("hat") == 2:
        items.append("a hat")
    carried = [_article(name) for name in ("backpack", "bag", "handbag") if attrs.get(name) == 2]
    return {
        "subject": subject,
        "pronoun": pronoun,
        "be": be,
        "hair": hair,
        "items": _join(items),
        "carrying": _join(carried) if carried else "no bag",
    }


def _template_0(p: Mapping[str, str]) -> str:
    # A teenage girl with long hair, wearing a white top and black trousers, carrying a bag.
    head = _article(p["subject"]) + (f" with {p['hair']}," if p["hair"] else "")
    if p["items"]:
        head += f" wearing {p['items']}"
    return f"{head.rstrip(',')}, carrying {p['carrying']}."


def _template_1(p: Mapping[str, str]) -> str:
    # This teenage girl has long hair and is wearing a white top and black trousers. She is
    # carrying a bag.
    clauses = ([f"has {p['hair']}"] if p["hair"] else []) + (
        [f"is wearing {p['items']}"] if p["items"] else []
    )
    if not clauses:
        return f"This {p['subject']} is carrying {p['carrying']}."
    return (
        f"This {p['subject']} {' and '.join(clauses)}. "
        f"{p['pronoun'].capitalize()} {p['be']} carrying {p['carrying']}."
    )


def _template_2(p: Mapping[str, str]) -> str:
    # A teenage girl in a white top and black trousers, with long hair, carrying a bag.
    head = _article(p["subject"]) + (f" in {p['items']}" if p["items"] else "")
    if p["hair"]:
        head += f", with {p['hair']}"
    return f"{head}, carrying {p['carrying']}."


#: Sentence templates; an identity uses ``TEMPLATES[int(identity) % 3]`` unless one is chosen.
TEMPLATES = (_template_0, _template_1, _template_2)


def describe_identity(attrs: Mapping[str, int], dataset: str, template: int = 0) -> str:
    """One English sentence from one identity's attribute codes (:func:`read_attributes`).

    Market: gender and age give the subject ("A teenage girl"), ``hair`` its length, ``up``
    the sleeves and the ``up*`` colours the top, ``clothes``/``down`` trousers, shorts or a
    long/short skirt in the ``down*`` colours. Duke: gender, ``top`` length and colours,
    ``down*`` colours ("bottoms"), ``boots`` and ``shoes`` shade. Both: hat and the carried
    backpack, bag and handbag ("no bag" when none). Unannotated (0) attributes and absent
    colours are left out; several colours are joined ("black and white trousers").
    """
    dataset = _dataset_name(dataset)
    if not 0 <= template < len(TEMPLATES):
        raise DatasetError(f"no sentence template {template}; use 0..{len(TEMPLATES) - 1}")
    missing = [a for a in ATTRIBUTES[dataset] if a not in attrs]
    if missing:
        raise DatasetError(f"attributes of a {dataset} identity lack {missing[0]!r}")
    text = TEMPLATES[template](_parts(attrs, dataset))
    return text[0].upper() + text[1:]


def _template_for(identity: str) -> int:
    key = int(identity) if identity.isdigit() else zlib.crc32(identity.encode())
    return key % len(TEMPLATES)


def attribute_captions(
    path: Path,
    dataset: str | None = None,
    *,
    splits: Sequence[str] = SPLITS,
    template: int | None = None,
) -> dict[str, str]:
    """``{identity: sentence}`` (4-digit identities such as ``0002``) for the identities of
    ``splits`` in an attribute file. Deterministic: identity ``i`` uses template ``i % 3``
    unless ``template`` fixes one."""
    annotations = read_attributes(path, dataset)
    out = {}
    for split in splits:
        if split not in annotations.splits:
            raise DatasetError(f"attribute file {path} has no split {split!r}; use train, test")
        for identity, attrs in annotations.splits[split].items():
            chosen = _template_for(identity) if template is None else template
            out[identity] = describe_identity(attrs, annotations.dataset, chosen)
    return out


# ---------------------------------------------------------------------------------------------
# CUHK-PEDES

#: The ``file_path`` prefix of each ReID dataset's images in CUHK-PEDES's ``reid_raw.json``.
PEDES_SOURCES = {"market1501": "Market", "cuhk03": "CUHK03"}
CAPTION_JOIN = " "


def read_cuhk_pedes(
    path: Path,
    source: str,
    *,
    caption: int | str = 0,
    duplicates: str = "error",
) -> dict[str, str]:
    """``{image file name: caption}`` for the records of one source dataset in CUHK-PEDES's
    ``reid_raw.json``.

    ``source`` is the first component of ``file_path`` (``Market``, ``CUHK03``, ...; compared
    without case). Keys are base names (``0002_c1s1_000451_03.jpg``), which is why one source is
    read at a time: base names repeat across sources. ``caption`` picks the caption by index
    (0, the first, by default: each image has two, by different annotators) or ``"all"`` joins
    them with a space. A base name listed twice in the source with different text is an error,
    unless ``duplicates="first"`` keeps the first; an empty caption is an error naming its
    records.
    """
    path = existing_file(path, "CUHK-PEDES file")
    if duplicates not in ("error", "first"):
        raise DatasetError(f"duplicates must be 'error' or 'first', not {duplicates!r}")
    if not (caption == "all" or (isinstance(caption, int) and not isinstance(caption, bool))):
        raise DatasetError(f"caption must be an index (0, 1, ...) or 'all', not {caption!r}")
    records = read_json(path, "CUHK-PEDES file")
    if not isinstance(records, list):
        raise DatasetError(f"CUHK-PEDES file {path} must hold a JSON list of records")
    out: dict[str, str] = {}
    origin: dict[str, str] = {}
    sources: dict[str, int] = {}
    blank: list[str] = []
    for i, record in enumerate(records):
        where = f"CUHK-PEDES file {path}, record {i + 1}"
        if not isinstance(record, dict):
            raise DatasetError(f"{where} is not an object")
        file_path = record.get("file_path")
        if not isinstance(file_path, str) or not file_path.strip():
            raise DatasetError(f"{where} lacks the field 'file_path'")
        parts = PurePosixPath(file_path.replace("\\", "/")).parts
        prefix = parts[0] if len(parts) > 1 else ""
        sources[prefix] = sources.get(prefix, 0) + 1
        if prefix.lower() != source.lower():
            continue
        captions = record.get("captions")
        if (
            not isinstance(captions, list)
            or not captions
            or not all(isinstance(c, str) for c in captions)
        ):
            raise DatasetError(
                f"{where} ({file_path}): 'captions' must be a non-empty list of text"
            )
        if caption == "all":
            text = CAPTION_JOIN.join(c.strip() for c in captions)
        elif not -len(captions) <= caption < len(captions):
            raise DatasetError(
                f"{where} ({file_path}) has {len(captions)} captions; there is no caption {caption}"
            )
        else:
            text = captions[caption].strip()
        if not text:
            blank.append(file_path)
            continue
        name = parts[-1]
        if name in out and out[name] != text and duplicates == "error":
            raise DatasetError(
                f"CUHK-PEDES file {path}: {origin[name]} and {file_path} share the image name "
                f"{name!r} with different captions (pass duplicates='first' to keep the first)"
            )
        if name not in out:
            out[name], origin[name] = text, file_path
    if blank:
        which = "the captions" if caption == "all" else f"caption {caption}"
        raise DatasetError(
            f"CUHK-PEDES file {path}: {which} of {listing(blank)} "
            f"{'is' if len(blank) == 1 else 'are'} empty"
        )
    if not out:
        listed = ", ".join(f"{k or '(no folder)'} ({n})" for k, n in sorted(sources.items()))
        raise DatasetError(
            f"CUHK-PEDES file {path} has no record whose file_path starts with {source!r}/ "
            f"(sources present: {listed or 'none'})"
        )
    return out


# ---------------------------------------------------------------------------------------------
# One entry point

#: Kinds of text source :func:`read_text_source` reads.
TEXT_SOURCES = ("captions", "attributes", "cuhk-pedes")


def read_text_source(kind: str, path: Path, **options: Any) -> dict[str, str]:
    """``{key: text}`` from a text source of kind ``captions`` (:func:`read_captions`),
    ``attributes`` (:func:`attribute_captions`; options ``dataset``, ``splits``, ``template``)
    or ``cuhk-pedes`` (:func:`read_cuhk_pedes`; options ``source`` (required), ``caption``,
    ``duplicates``)."""
    allowed = {
        "captions": (),
        "attributes": ("dataset", "splits", "template"),
        "cuhk-pedes": ("source", "caption", "duplicates"),
    }
    if kind not in allowed:
        raise DatasetError(f"unknown text source {kind!r}; known: {', '.join(TEXT_SOURCES)}")
    unknown = [k for k in options if k not in allowed[kind]]
    if unknown:
        known = ", ".join(allowed[kind]) or "none"
        raise DatasetError(f"text source {kind!r} has no option {unknown[0]!r} (options: {known})")
    if kind == "captions":
        return read_captions(path)
    if kind == "attributes":
        return attribute_captions(path, **options)
    if "source" not in options:
        raise DatasetError(
            "text source 'cuhk-pedes' needs the option 'source', the source dataset's folder in "
            f"reid_raw.json (e.g. {', '.join(PEDES_SOURCES.values())})"
        )
    return read_cuhk_pedes(path, **options)
