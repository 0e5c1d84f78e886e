"""Text sources: Market/Duke attribute .mat files -> sentences, CUHK-PEDES captions, plain files."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.io import savemat

from bench.api.samples import Sample
from bench.data import captions
from bench.data.captions import attach_text
from bench.data.text_sources import (
    ATTRIBUTES,
    DUKE_ATTRIBUTES,
    MARKET_ATTRIBUTES,
    attribute_captions,
    describe_identity,
    read_attributes,
    read_captions,
    read_cuhk_pedes,
    read_text_source,
)
from bench.errors import DatasetError

REPO = Path(__file__).resolve().parent.parent


def shared_data() -> Path | None:
    """``shared/data`` beside the checkout (CI: ``../shared``; worktrees: ``../../shared``)."""
    for base in (REPO, REPO.parent, REPO.parent.parent):
        if (base / "shared" / "data").is_dir():
            return base / "shared" / "data"
    return None


SHARED = shared_data()
REAL = {
    "market": SHARED / "market1501_attribute" / "market_attribute.mat" if SHARED else None,
    "duke": SHARED / "dukemtmc_attribute" / "duke_attribute.mat" if SHARED else None,
}


def market(**codes: int) -> dict[str, int]:
    """A Market identity: every attribute 1 (no / first option) unless given; age 3 (adult)."""
    return {a: 1 for a in MARKET_ATTRIBUTES} | {"age": 3} | codes


def duke(**codes: int) -> dict[str, int]:
    return {a: 1 for a in DUKE_ATTRIBUTES} | codes


def write_attribute_mat(
    path: Path,
    dataset: str,
    train: dict[str, dict[str, int]],
    test: dict[str, dict[str, int]],
    *,
    var: str | None = None,
    drop: tuple[str, ...] = (),
    override: dict[str, object] | None = None,
    override_split: str = "test",
) -> Path:
    """A file in the real structure: one struct ``<dataset>_attribute`` with ``train`` and
    ``test`` structs of uint8 1 x N arrays per attribute and a 1 x N cell ``image_index``;
    ``override`` replaces fields of the ``override_split`` struct."""

    def part(table: dict[str, dict[str, int]], split: str) -> dict[str, object]:
        ids = list(table)
        fields: dict[str, object] = {
            name: np.array([[table[i][name] for i in ids]], dtype=np.uint8)
            for name in ATTRIBUTES[dataset]
            if name not in drop
        }
        cells = np.empty((1, len(ids)), dtype=object)
        cells[0, :] = ids
        fields["image_index"] = cells
        if split == override_split:
            fields.update(override or {})
        return fields

    savemat(
        path,
        {
            var or f"{dataset}_attribute": {
                "test": part(test, "test"),
                "train": part(train, "train"),
            }
        },
    )
    return path


# --------------------------------------------------------------------------- sentences

GIRL = market(gender=2, age=2, hair=2, up=2, upwhite=2, clothes=2, down=1, downblack=2, backpack=2)


@pytest.mark.parametrize(
    ("template", "sentence"),
    [
        (
            0,
            "A teenage girl with long hair, wearing a short-sleeved white top and black "
            "trousers, carrying a backpack.",
        ),
        (
            1,
            "This teenage girl has long hair and is wearing a short-sleeved white top and black "
            "trousers. She is carrying a backpack.",
        ),
        (
            2,
            "A teenage girl in a short-sleeved white top and black trousers, with long hair, "
            "carrying a backpack.",
        ),
    ],
)
def test_market_templates(template, sentence):
    assert describe_identity(GIRL, "market", template) == sentence


@pytest.mark.parametrize(
    ("attrs", "template", "sentence"),
    [
        (
            market(gender=1, age=4, up=1, upblue=2, clothes=2, down=2, downgray=2, downblue=2)
            | {"hat": 2, "backpack": 2, "bag": 2, "handbag": 2},
            0,
            "An elderly man with short hair, wearing a long-sleeved blue top, gray and blue "
            "shorts and a hat, carrying a backpack, a bag and a handbag.",
        ),
        (
            market(gender=2, age=1, hair=2, up=2, clothes=1, down=2),
            2,
            "A young girl in a short-sleeved top and a short skirt, with long hair, carrying no "
            "bag.",
        ),
        (
            market(gender=1, age=3, clothes=2, down=1, bag=2),
            1,
            "This man has short hair and is wearing a long-sleeved top and trousers. He is "
            "carrying a bag.",
        ),
        (
            market(gender=2, clothes=1, down=1, downpink=2, upred=2, upyellow=2, uppurple=2),
            0,
            "A woman with short hair, wearing a long-sleeved red, purple and yellow top and a "
            "long pink skirt, carrying no bag.",
        ),
        (
            duke(gender=2, top=2, upblack=2, downblue=2, boots=2, shoes=1, backpack=2),
            0,
            "A woman wearing a long black top, blue bottoms and dark boots, carrying a backpack.",
        ),
        (
            duke(gender=2, top=2, upblack=2, downblue=2, boots=2, shoes=1, backpack=2),
            1,
            "This woman is wearing a long black top, blue bottoms and dark boots. She is "
            "carrying a backpack.",
        ),
        (
            duke(gender=2, top=2, upblack=2, downblue=2, boots=2, shoes=1, backpack=2),
            2,
            "A woman in a long black top, blue bottoms and dark boots, carrying a backpack.",
        ),
        (  # top 0 (unannotated, as in the real file), no colours at all
            duke(gender=1, top=0, shoes=2, hat=2, handbag=2),
            0,
            "A man wearing light-coloured shoes and a hat, carrying a handbag.",
        ),
        (  # gender 0: "person" / "they"; no shoe shade and no boots: no footwear
            duke(gender=0, top=1, upred=2, shoes=0),
            1,
            "This person is wearing a short red top. They are carrying no bag.",
        ),
        (duke(gender=1, top=0, shoes=0), 1, "This man is carrying no bag."),
    ],
)
def test_exact_sentences(attrs, template, sentence):
    dataset = "market" if "age" in attrs else "duke"
    assert describe_identity(attrs, dataset, template) == sentence


def test_describe_errors():
    with pytest.raises(DatasetError, match="no sentence template 3"):
        describe_identity(GIRL, "market", 3)
    with pytest.raises(DatasetError, match="unknown attribute dataset 'msmt17'"):
        describe_identity(GIRL, "msmt17")
    with pytest.raises(DatasetError, match="lack 'top'"):
        describe_identity(GIRL, "duke")


# --------------------------------------------------------------------------- .mat files


def test_read_market_file_and_captions(tmp_path):
    train = {"0002": GIRL, "0007": market(gender=1, bag=2), "0010": market(age=4, hair=2)}
    test = {"0001": market(gender=2, hat=2), "1501": market(clothes=1)}
    path = write_attribute_mat(tmp_path / "market_attribute.mat", "market", train, test)
    ann = read_attributes(path)
    assert ann.dataset == "market"
    assert ann.train == train and ann.test == test
    caps = attribute_captions(path)
    assert list(caps) == ["0002", "0007", "0010", "0001", "1501"]
    # identity i uses template i % 3: deterministic, varied
    assert caps["0002"] == describe_identity(GIRL, "market", 2)
    assert caps["0007"] == describe_identity(train["0007"], "market", 1)
    assert caps["0010"].startswith("This elderly man has long hair")
    assert caps == attribute_captions(path)
    assert list(attribute_captions(path, splits=["test"])) == ["0001", "1501"]
    assert set(attribute_captions(path, template=0).values()) == {
        describe_identity(a, "market", 0) for a in [*train.values(), *test.values()]
    }
    # keys are what attach_text looks up: 4-digit identities
    samples = [Sample("/m/0002_c1s1_000451_03.jpg", 2, 0), Sample("/m/0003_c1s1_1_01.jpg", 3, 0)]
    assert [s.text for s in attach_text(samples, caps)] == [caps["0002"], None]


def test_dataset_from_fields_or_argument(tmp_path):
    d = {"0001": duke(gender=2, upwhite=2)}
    named = write_attribute_mat(tmp_path / "a.mat", "duke", d, {"0002": duke()}, var="attrs")
    assert read_attributes(named).dataset == "duke"  # from the fields
    assert read_attributes(named, "dukemtmc-reid").dataset == "duke"
    with pytest.raises(DatasetError, match=r"train lacks the market attribute 'hair'"):
        read_attributes(named, "market")
    # numeric identities in image_index are accepted and zero-padded
    cells = np.empty((1, 1), dtype=object)
    cells[0, 0] = np.array([[7.0]])
    numeric = write_attribute_mat(
        tmp_path / "n.mat",
        "duke",
        d,
        {"0002": duke()},
        override={"image_index": cells},
        override_split="train",
    )
    assert list(read_attributes(numeric).train) == ["0007"]


def test_attribute_file_errors(tmp_path):
    ok_train, ok_test = {"0002": GIRL, "0003": market()}, {"0004": market()}

    def bad(**kwargs) -> Path:
        return write_attribute_mat(tmp_path / "bad.mat", "market", ok_train, ok_test, **kwargs)

    with pytest.raises(DatasetError, match=r"attribute file .*missing.mat does not exist"):
        read_attributes(tmp_path / "missing.mat")
    (tmp_path / "junk.mat").write_bytes(b"\x00junk" * 40)
    with pytest.raises(DatasetError, match=r"cannot read attribute file .*junk.mat"):
        read_attributes(tmp_path / "junk.mat")
    with h5py.File(tmp_path / "v73.mat", "w", userblock_size=512) as f:
        f.create_dataset("x", data=[1])
    with (tmp_path / "v73.mat").open("r+b") as fh:  # MATLAB's header in the HDF5 user block
        fh.write(b"MATLAB 7.3 MAT-file".ljust(116) + b"\0" * 8 + b"\x00\x02IM")
    with pytest.raises(DatasetError, match=r"v73.mat is MATLAB v7.3"):
        read_attributes(tmp_path / "v73.mat")
    savemat(tmp_path / "two.mat", {"a": np.ones(2), "b": np.ones(2)})
    with pytest.raises(DatasetError, match=r"should hold one struct .*\(variables: a, b\)"):
        read_attributes(tmp_path / "two.mat")
    savemat(tmp_path / "half.mat", {"market_attribute": {"train": {"age": np.ones((1, 2))}}})
    with pytest.raises(DatasetError, match=r"'market_attribute' lacks the field 'test' "):
        read_attributes(tmp_path / "half.mat")
    with pytest.raises(DatasetError, match=r"train lacks the market attribute 'age'"):
        read_attributes(bad(drop=("age",)))
    with pytest.raises(DatasetError, match=r"cannot tell whether .* Market-1501 or DukeMTMC"):
        read_attributes(bad(var="attrs", drop=("age",)))
    with pytest.raises(DatasetError, match=r"test.age should be 1 x 1 numbers .* shape \(1, 2\)"):
        read_attributes(bad(override={"age": np.array([[2, 3]], dtype=np.uint8)}))
    with pytest.raises(
        DatasetError, match=r"test.age of identity 0004 is 5; the coding is 1, 2, 3, 4 \(0 = un"
    ):
        read_attributes(bad(override={"age": np.array([[5]], dtype=np.uint8)}))
    with pytest.raises(DatasetError, match=r"test.hat of identity 0004 is 3; the coding is 1, 2 "):
        read_attributes(bad(override={"hat": np.array([[3]], dtype=np.uint8)}))
    dup = write_attribute_mat(tmp_path / "d.mat", "market", {"0002": GIRL}, {"0002": GIRL})
    with pytest.raises(DatasetError, match="identity 0002 is in both train and test"):
        read_attributes(dup)
    cells = np.empty((1, 1), dtype=object)
    cells[0, 0] = "abc"
    with pytest.raises(DatasetError, match=r"test.image_index entry 1 is not an identity"):
        read_attributes(bad(override={"image_index": cells}))
    with pytest.raises(DatasetError, match="no split 'val'"):
        attribute_captions(bad(), splits=["val"])


@pytest.mark.parametrize(("dataset", "counts"), [("market", (751, 750)), ("duke", (702, 1110))])
def test_real_attribute_files(dataset, counts):
    path = REAL[dataset]
    if path is None or not path.is_file():
        pytest.skip(f"real {dataset} attribute file not found (shared/data/ beside the repo)")
    ann = read_attributes(path)
    assert ann.dataset == dataset
    assert (len(ann.train), len(ann.test)) == counts
    assert all(len(i) == 4 and i.isdigit() for i in [*ann.train, *ann.test])
    caps = attribute_captions(path)
    assert len(caps) == sum(counts)
    assert all(c.endswith(".") and c[0].isupper() for c in caps.values())
    # the sentence keeps everything it renders: identities with different annotations and the
    # same template get different sentences
    everyone = {**ann.train, **ann.test}
    rendered = {(int(i) % 3, tuple(sorted(everyone[i].items()))) for i in caps}
    assert len(set(caps.values())) == len(rendered)
    if dataset == "duke":  # 'top' is 0 (unannotated) for 0370 in the real file: no length
        assert ann.train["0370"]["top"] == 0
        assert " black top" in caps["0370"] and "long black" not in caps["0370"]


# --------------------------------------------------------------------------- CUHK-PEDES

RECORDS = [
    {
        "split": "train",
        "captions": ["A man in a red shirt and jeans. ", "The man wears red."],
        "file_path": "Market/0002_c1s1_000451_03.jpg",
        "processed_tokens": [["a", "man"], ["the", "man"]],
        "id": 1,
    },
    {
        "split": "train",
        "captions": ["A woman with a white bag.", "She carries a bag."],
        "file_path": "CUHK01/0002_c1s1_000451_03.jpg",  # the same base name in another source
        "processed_tokens": [["a"], ["she"]],
        "id": 2,
    },
    {
        "split": "test",
        "captions": ["A child in blue.", "Small kid, blue coat.", "Blue."],
        "file_path": "Market/0007_c2s3_000100_01.jpg",
        "processed_tokens": [["a"], ["small"], ["blue"]],
        "id": 3,
    },
    {
        "split": "val",
        "captions": ["A person on a bike.", "Cyclist."],
        "file_path": "CUHK03/1_001_1_01.png",
        "processed_tokens": [["a"], ["cyclist"]],
        "id": 4,
    },
]


def _write(tmp_path: Path, records, name="reid_raw.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(records))
    return path


def test_cuhk_pedes_sources_and_caption_choice(tmp_path):
    path = _write(tmp_path, RECORDS)
    assert read_cuhk_pedes(path, "Market") == {
        "0002_c1s1_000451_03.jpg": "A man in a red shirt and jeans.",
        "0007_c2s3_000100_01.jpg": "A child in blue.",
    }
    assert read_cuhk_pedes(path, "market", caption=1)["0007_c2s3_000100_01.jpg"] == (
        "Small kid, blue coat."
    )
    assert read_cuhk_pedes(path, "Market", caption=-1)["0007_c2s3_000100_01.jpg"] == "Blue."
    assert read_cuhk_pedes(path, "Market", caption="all")["0002_c1s1_000451_03.jpg"] == (
        "A man in a red shirt and jeans. The man wears red."
    )
    # the same base name in CUHK01 has its own caption: one source at a time
    assert read_cuhk_pedes(path, "CUHK01") == {
        "0002_c1s1_000451_03.jpg": "A woman with a white bag."
    }
    assert read_cuhk_pedes(path, "CUHK03") == {"1_001_1_01.png": "A person on a bike."}
    samples = [Sample("/d/0002_c1s1_000451_03.jpg", 2, 0), Sample("/d/0009_c1s1_1_01.jpg", 9, 0)]
    texts = [s.text for s in attach_text(samples, read_cuhk_pedes(path, "Market"))]
    assert texts == ["A man in a red shirt and jeans.", None]


def test_cuhk_pedes_duplicates(tmp_path):
    twice = [*RECORDS, dict(RECORDS[0], captions=["Another text."], id=9)]
    path = _write(tmp_path, twice)
    with pytest.raises(DatasetError, match=r"Market/0002_c1s1_000451_03.jpg and Market/0002_c1s1"):
        read_cuhk_pedes(path, "Market")
    assert read_cuhk_pedes(path, "Market", duplicates="first")["0002_c1s1_000451_03.jpg"] == (
        "A man in a red shirt and jeans."
    )
    same = _write(tmp_path, [*RECORDS, RECORDS[0]], "same.json")  # identical text: fine
    assert len(read_cuhk_pedes(same, "Market")) == 2


@pytest.mark.parametrize(
    ("records", "kwargs", "message"),
    [
        ({"a": 1}, {}, "must hold a JSON list of records"),
        ([1], {}, "record 1 is not an object"),
        ([{"captions": ["x"]}], {}, "record 1 lacks the field 'file_path'"),
        ([{"file_path": "Market/a.jpg", "captions": "x"}], {}, r"record 1 \(Market/a.jpg\): 'cap"),
        ([{"file_path": "Market/a.jpg", "captions": []}], {}, "non-empty list of text"),
        (RECORDS, {"caption": 2}, r"record 1 \(Market/0002_c1s1_000451_03.jpg\) has 2 captions"),
        (RECORDS, {"caption": "both"}, "caption must be an index"),
        (RECORDS, {"duplicates": "last"}, "duplicates must be 'error' or 'first'"),
    ],
)
def test_cuhk_pedes_errors(tmp_path, records, kwargs, message):
    path = _write(tmp_path, records)
    with pytest.raises(DatasetError, match=message):
        read_cuhk_pedes(path, "Market", **kwargs)


def test_cuhk_pedes_file_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"CUHK-PEDES file .*nope.json does not exist"):
        read_cuhk_pedes(tmp_path / "nope.json", "Market")
    (tmp_path / "bad.json").write_text("[{")
    with pytest.raises(DatasetError, match="bad.json is not valid JSON"):
        read_cuhk_pedes(tmp_path / "bad.json", "Market")
    path = _write(tmp_path, RECORDS)
    with pytest.raises(
        DatasetError,
        match=r"starts with 'VIPER'/ \(sources present: CUHK01 \(1\), CUHK03 \(1\), "
        r"Market \(2\)\)",
    ):
        read_cuhk_pedes(path, "VIPER")


# --------------------------------------------------------------------------- one entry point


def test_read_text_source(tmp_path):
    assert read_captions is captions.read_captions  # re-exported, not duplicated
    (tmp_path / "c.csv").write_text("key,text\n0002,by id\n")
    assert read_text_source("captions", tmp_path / "c.csv") == {"0002": "by id"}
    mat = write_attribute_mat(tmp_path / "m.mat", "market", {"0002": GIRL}, {"0003": market()})
    assert read_text_source("attributes", mat, template=0)["0002"] == describe_identity(
        GIRL, "market", 0
    )
    pedes = _write(tmp_path, RECORDS)
    assert read_text_source("cuhk-pedes", pedes, source="CUHK03", caption=1) == {
        "1_001_1_01.png": "Cyclist."
    }
    with pytest.raises(DatasetError, match="unknown text source 'wiki'; known: captions, attrib"):
        read_text_source("wiki", pedes)
    with pytest.raises(DatasetError, match=r"no option 'captions' \(options: source, caption, d"):
        read_text_source("cuhk-pedes", pedes, source="Market", captions=1)
    with pytest.raises(DatasetError, match="'cuhk-pedes' needs the option 'source'"):
        read_text_source("cuhk-pedes", pedes)
    with pytest.raises(DatasetError, match=r"'captions' has no option 'source' \(options: none\)"):
        read_text_source("captions", tmp_path / "c.csv", source="x")
