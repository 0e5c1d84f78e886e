"""``synthetic.domain`` of synthetic-person: domain 0 is the original dataset, other domains are
deterministic, look measurably different, hold other people, and bad values are refused."""

from __future__ import annotations

import colorsys
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.config import dataset_config
from bench.data.synthetic import MARKER, default_root, ensure_dataset, generation_params
from bench.data.synthetic.person import ACHROMATIC, COLOURS, DOMAIN_0, make_domain
from bench.errors import ConfigError, DatasetError
from bench.plugins import get_dataset

IDS = 4


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def domains(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """Seed 0 with 4 identities: domain 0, domain 1 twice (two roots) and domain 2."""
    base = tmp_path_factory.mktemp("domains")
    out = {}
    for label, domain in (("0", 0), ("1", 1), ("1again", 1), ("2", 2)):
        root = ensure_dataset("synthetic-person", base / label, 0, IDS, domain, progress=False)
        out[label] = {
            str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
        }
    return out


def _images(files: dict[str, bytes], folder: str = "") -> list[np.ndarray]:
    from io import BytesIO

    return [
        np.asarray(Image.open(BytesIO(v)).convert("RGB"), np.float32)
        for k, v in files.items()
        if k.endswith(".jpg") and k.startswith(folder)
    ]


def test_domain_0_is_the_original_dataset(tmp_path, cache, domains):
    assert generation_params("synthetic-person", 0, IDS, 0) == {
        "dataset": "synthetic-person",
        "seed": 0,
        "identities": IDS,
    }
    assert default_root("synthetic-person", 0, IDS, 0) == default_root("synthetic-person", 0, IDS)
    # the cache folder of the default dataset, as it was named before domains existed
    assert default_root("synthetic-person", 0, 100, 0).name == "synthetic-person-aa3a8f36fb"
    assert "domain" not in json.loads(domains["0"][MARKER])["params"]
    implicit = ensure_dataset("synthetic-person", tmp_path / "implicit", 0, IDS, progress=False)
    assert {
        str(p.relative_to(implicit)): p.read_bytes() for p in implicit.rglob("*") if p.is_file()
    } == domains["0"]


def test_other_domain_is_deterministic_and_shares_only_the_layout(domains):
    assert domains["1"] == domains["1again"]
    assert json.loads(domains["1"][MARKER])["params"]["domain"] == 1
    assert default_root("synthetic-person", 0, IDS, 1) != default_root("synthetic-person", 0, IDS)
    # same plan (file names, counts) in every domain, but no image in common
    assert list(domains["0"]) == list(domains["1"]) == list(domains["2"])
    for a, b in (("0", "1"), ("1", "2"), ("0", "2")):
        jpgs = [k for k in domains[a] if k.endswith(".jpg")]
        assert all(domains[a][k] != domains[b][k] for k in jpgs)
    assert all(im.shape == (128, 64, 3) for im in _images(domains["1"]))


def _mean_rgb(files: dict[str, bytes]) -> np.ndarray:
    return np.stack([im.mean((0, 1)) for im in _images(files, "bounding_box_train")]).mean(0)


def test_other_domain_differs_in_image_statistics(domains):
    means = {d: _mean_rgb(domains[d]) for d in ("0", "1", "2")}
    print("mean train RGB per domain:", {d: m.round(1).tolist() for d, m in means.items()})
    assert np.abs(means["1"] - means["0"]).max() > 12
    assert np.abs(means["2"] - means["0"]).max() > 12
    # backgrounds: the side strips (mostly wall and floor) have another mean colour and another
    # relative texture (pixel std over mean brightness)
    strips = {d: [im[:, :6] for im in _images(domains[d], "bounding_box")] for d in means}
    colour = {d: np.mean([s.mean((0, 1)) for s in v], 0) for d, v in strips.items()}
    texture = {d: np.mean([s.std() / s.mean() for s in v]) for d, v in strips.items()}
    print("side strips:", {d: (colour[d].round(1).tolist(), round(texture[d], 3)) for d in means})
    for d in ("1", "2"):
        assert np.abs(colour[d] - colour["0"]).max() > 12
        assert abs(texture[d] - texture["0"]) > 0.03


def test_other_domain_holds_other_people(domains):
    captions = {d: json.loads(domains[d]["captions.json"]) for d in ("0", "1")}
    assert (
        sum(captions["0"][k] == captions["1"][k] for k in captions["0"]) < len(captions["0"]) / 10
    )
    # the people: attributes of domain 1 differ from domain 0's for the same pid
    from bench.data.synthetic.person import make_people
    from bench.data.synthetic.render import rng_for

    words = ("gender", "age", "hair_colour", "upper_colour", "lower_colour", "bag")
    people = {
        d: [tuple(getattr(p, w) for w in words) for p in make_people(rng_for(0, 1, *mix), 20)]
        for d, mix in (("0", ()), ("1", (1,)))
    }
    assert sum(a == b for a, b in zip(people["0"], people["1"])) < 4


def test_domain_palette_keeps_the_colour_words():
    assert make_domain(0, 0) is DOMAIN_0 and DOMAIN_0.palette == COLOURS
    assert make_domain(3, 1) == make_domain(3, 1) and make_domain(3, 1) != make_domain(3, 2)
    for seed, domain in ((0, 1), (0, 2), (7, 5)):
        palette = make_domain(seed, domain).palette
        assert palette.keys() == COLOURS.keys() and palette != COLOURS
        for word, rgb in COLOURS.items():
            h0, s0, v0 = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
            h1, s1, v1 = colorsys.rgb_to_hsv(*(c / 255 for c in palette[word]))
            if word in ACHROMATIC:
                assert s1 < 0.1 and abs(v1 - v0) < 0.3, word
            else:
                turn = min(abs(h1 - h0), 1 - abs(h1 - h0)) * 360
                assert 0 < turn <= 12.5 and abs(s1 - s0) < 0.25, (word, turn)


@pytest.mark.parametrize("bad", [-1, 1.5, "1", True, None])
def test_bad_domain_is_refused(tmp_path, cache, bad):
    with pytest.raises(DatasetError, match=r"^synthetic.domain must be a non-negative integer"):
        ensure_dataset("synthetic-person", tmp_path / "x", 0, IDS, bad)
    with pytest.raises(DatasetError, match="synthetic.domain"):
        default_root("synthetic-person", 0, IDS, bad)
    assert not (tmp_path / "x").exists()


def test_domain_config_key(cache):
    person = get_dataset("synthetic-person")
    assert person.default_config["synthetic"]["domain"] == 0
    config = {"synthetic.identities": IDS, "synthetic.domain": 2}
    assert person(None, config).root == default_root("synthetic-person", 0, IDS, 2)
    assert dataset_config(person, ["synthetic.domain=3"])["synthetic.domain"] == 3
    with pytest.raises(ConfigError, match=r"'synthetic.domain' must be >= 0"):
        dataset_config(person, ["synthetic.domain=-1"])
    with pytest.raises(ConfigError, match=r"'synthetic.domain' expects an integer"):
        dataset_config(person, ["synthetic.domain=0.5"])
    with pytest.raises(DatasetError, match="synthetic.domain must be 0 for synthetic-polyp"):
        ensure_dataset("synthetic-polyp", cache / "p", 0, IDS, 1)
