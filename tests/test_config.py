from __future__ import annotations

import pytest

from bench.api.method import MethodSpec, Variant
from bench.config import coerce, config_hash, flatten, parse_set_args, parse_value, resolve_config
from bench.errors import ConfigError
from bench.plugins import get_dataset, get_method


def test_flatten_nested_and_dotted():
    assert flatten({"a": {"b": 1, "c": {"d": "x"}}, "e.f": 2}) == {"a.b": 1, "a.c.d": "x", "e.f": 2}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("0.5", 0.5),
        ("true", True),
        ("[1, 2]", [1, 2]),
        ("abc", "abc"),
        ("1e-3", 0.001),
        ("2E+2", 200.0),
        ("nan", "nan"),
    ],
)
def test_parse_value(text, value):
    assert parse_value(text) == value


def test_coerce_types():
    assert coerce("k", 3, 0.1) == 3.0 and isinstance(coerce("k", 3, 0.1), float)
    assert coerce("k", [1], [0, 0]) == [1]
    assert coerce("k", 7, "x") == "7"
    with pytest.raises(ConfigError, match="'k' expects an integer"):
        coerce("k", "abc", 1)
    with pytest.raises(ConfigError, match="expects an integer"):
        coerce("k", True, 1)
    with pytest.raises(ConfigError, match="expects true/false"):
        coerce("k", 1, False)
    with pytest.raises(ConfigError, match="must be one of cosine, euclidean"):
        coerce("k", "manhattan", "cosine", ("cosine", "euclidean"))


def test_set_args_need_equals():
    assert parse_set_args(["a.b=2", "c = x"]) == {"a.b": 2, "c": "x"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_set_args(["train.epochs"])


def test_resolution_order_defaults_preset_variant_set():
    bot = get_method("bot")
    data = get_dataset("synthetic-person")
    paper, preset = resolve_config(bot, [data], None)
    assert preset == "paper" and paper["model.depth"] == 50 and paper["train.epochs"] == 120
    quick, _ = resolve_config(bot, [data], "quick")
    assert quick["model.depth"] == 18
    # A variant's overrides land after the preset, --set after both.
    variant = MethodSpec("bot-x", bot.family, Variant("x", {"model": {"depth": 34}}))
    v, _ = resolve_config(variant, [data], "quick", ["model.depth=101", "optim.lr=0.01"])
    assert v["model.depth"] == 101 and v["optim.lr"] == 0.01
    v2, _ = resolve_config(variant, [data], "quick")
    assert v2["model.depth"] == 34
    # Dataset and harness keys are part of the same namespace.
    assert "synthetic.seed" in paper and paper["eval.metric"] == "cosine"


def test_unknown_key_suggests_nearest():
    bot = get_method("bot")
    data = get_dataset("synthetic-person")
    with pytest.raises(ConfigError, match=r"unknown config key 'train.epoch'.*'train.epochs'"):
        resolve_config(bot, [data], "quick", ["train.epoch=3"])
    with pytest.raises(ConfigError, match="unknown preset 'fast'.*paper, quick"):
        resolve_config(bot, [data], "fast")
    with pytest.raises(ConfigError, match="'model.depth' must be one of"):
        resolve_config(bot, [data], "quick", ["model.depth=19"])


def test_config_hash_stable_and_sensitive():
    a = config_hash({"x": 1, "y": [1, 2]})
    assert a == config_hash({"y": [1, 2], "x": 1})
    assert a != config_hash({"x": 2, "y": [1, 2]})


def test_preset_dataset_key_is_skipped_only_where_absent_and_declared():
    """A method preset may set a dataset's key (DMCL released: colo_pair.text_key=patient): it
    applies where the run's dataset has the key, is skipped where it has not but some registered
    dataset declares it, and any other unknown preset key is still an error."""
    dmcl = get_method("dmcl")
    for name in ("colo-pair", "synthetic-polyp"):
        config, _ = resolve_config(dmcl, [get_dataset(name)], "released")
        assert config["colo_pair.text_key"] == "patient"
        paper, _ = resolve_config(dmcl, [get_dataset(name)], "paper")
        assert paper["colo_pair.text_key"] == "polyp"
    market, _ = resolve_config(dmcl, [get_dataset("market1501")], "released")
    assert "colo_pair.text_key" not in market and market["text.frozen"] is True
    # --set is not a preset: naming a key this run lacks is still an error
    with pytest.raises(ConfigError, match="unknown config key 'colo_pair.text_key'"):
        resolve_config(dmcl, [get_dataset("market1501")], "released", ["colo_pair.text_key=polyp"])
    # a wrong value of a declared key is refused where the key exists
    bad = type("Bad", (dmcl.family,), {"presets": {"p": {"colo_pair": {"text_key": "case"}}}})
    with pytest.raises(ConfigError, match="'colo_pair.text_key' must be one of polyp, patient"):
        resolve_config(MethodSpec("bad", bad, None), [get_dataset("colo-pair")], "p")
    typo = type("Typo", (dmcl.family,), {"presets": {"p": {"colo_pair": {"text_kye": "patient"}}}})
    for data in ("market1501", "colo-pair"):
        with pytest.raises(ConfigError, match=r"unknown config key 'colo_pair.text_kye' in preset"):
            resolve_config(MethodSpec("typo", typo, None), [get_dataset(data)], "p")
