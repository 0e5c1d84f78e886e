"""DMCL fidelity to the released code and the fair protocol: presets, gallery text, truncation
facts and warnings, the frozen encoder's dropout, and the Colo-Pair text key."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest
import torch

from bench.backbones import bert
from bench.config import dataset_config, resolve_config
from bench.data.colo_pair import read_colo_pair, sheet_key
from bench.engine.context import RunContext, seed_everything
from bench.errors import BenchError, ConfigError, DatasetError
from bench.plugins import get_dataset, get_method

TINY = [
    "synthetic.identities=24",
    "model.width=8",
    "text.hidden=32",
    "text.intermediate=64",
    "fusion.width=32",
    "fusion.heads=1",
    "fusion.ffn=64",
    "input.height=32",
    "input.width=32",
    "sampler.p=4",
]


def _method(name: str = "dmcl", sets=(), preset: str = "quick"):
    spec = get_method(name)
    data_cls = get_dataset("synthetic-polyp")
    config, _ = resolve_config(spec, [data_cls], preset, [*TINY, *sets])
    # 0 epochs, past the config check (epochs >= 1): fit() builds the network and counts the
    # texts, then stops
    config["train.epochs"] = 0
    splits = data_cls(None, config).load("fold0")
    seed_everything(0)
    return spec.family(config, RunContext(show_progress=False)), splits


def _without_text(samples):
    return [dataclasses.replace(s, text=None, text_level=None) for s in samples]


def test_presets_follow_the_released_code_where_the_paper_is_silent():
    dmcl = get_method("dmcl")
    colo = get_dataset("colo-pair")
    paper, _ = resolve_config(dmcl, [colo], "paper")
    released, _ = resolve_config(dmcl, [colo], "released")
    quick, _ = resolve_config(dmcl, [colo], "quick")
    for c in (paper, released, quick):
        assert c["dmcl.gallery_text"] == "query"
    for c in (paper, released):
        assert c["text.max_length"] == 291 and c["fusion.dropout"] == 0.0
    assert released["text.frozen"] is True and released["text.frozen_dropout"] is True
    assert paper["text.frozen_dropout"] is False and quick["text.frozen_dropout"] is False
    assert released["colo_pair.text_key"] == "patient" and paper["colo_pair.text_key"] == "polyp"
    assert quick["text.max_length"] == 48 and quick["fusion.dropout"] == 0.1


def test_own_gallery_text_needs_image_level_text_or_the_oracle_key():
    method, splits = _method(sets=["dmcl.gallery_text=own"])
    method.fit(splits.train)
    assert method.answers == "embed"
    assert method.embed(splits.gallery[:3]).shape == (3, 32)  # the oracle: own identity text
    with pytest.raises(BenchError, match=r"dmcl\.gallery_text=own.*oracle_gallery_text=true"):
        method.embed(_without_text(splits.gallery[:3]))
    # the fair mode needs no gallery text at all
    fair, _ = _method()
    fair.fit(splits.train)
    scores = fair.score(splits.query[:4], _without_text(splits.gallery[:6]))
    assert fair.answers == "score" and scores.shape == (4, 6) and torch.isfinite(scores).all()


def test_no_image_variant_ranks_by_chance_with_the_query_text():
    """dmcl-no-image with gallery_text=query: every gallery item of a query gets one score."""
    method, splits = _method("dmcl-no-image")
    method.fit(splits.train)
    scores = method.score(splits.query[:3], _without_text(splits.gallery[:7]))
    torch.testing.assert_close(scores, scores[:, :1].expand_as(scores), rtol=0, atol=1e-6)


def _tokens(method, texts) -> list[int]:
    tok = bert.tokenizer_from_json(method.tokenizer_json)
    return [len(ids) for ids in tok(sorted(set(texts)))["input_ids"]]


def test_cut_texts_are_counted_warned_and_reported():
    method, splits = _method(sets=["text.max_length=12"])
    with pytest.warns(UserWarning, match=r"training texts .* text\.max_length=12") as caught:
        method.fit(splits.train)
    train_texts = {s.text for s in splits.train}
    lengths = _tokens(method, train_texts)
    cut = sum(n > 12 for n in lengths)
    assert cut > 0
    message = str(caught[0].message)
    assert f"{cut} of {len(train_texts)} " in message
    assert f"{100 * cut / len(train_texts):.1f}%" in message
    assert f"longest has {max(lengths)} tokens" in message
    assert "\n" not in message
    facts = method.run_facts()["text"]
    assert facts == {
        "max_length": 12,
        "texts": len(train_texts),
        "cut": cut,
        "cut_share": cut / len(train_texts),
        "longest_tokens": max(lengths),
    }
    # evaluation texts are counted too, and warned about when cut
    query = splits.query
    new = {s.text for s in query} - train_texts
    assert new  # fold0's test polyps have texts of their own
    with pytest.warns(UserWarning, match=r"query texts .* text\.max_length=12"):
        method.score(query, _without_text(splits.gallery[:4]))
    all_lengths = _tokens(method, train_texts | new)
    facts = method.run_facts()["text"]
    assert facts["texts"] == len(train_texts | new)
    assert facts["cut"] == sum(n > 12 for n in all_lengths)
    assert facts["longest_tokens"] == max(all_lengths)


def test_quick_cuts_no_synthetic_polyp_text():
    method, splits = _method()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any truncation warning fails the test
        method.fit(splits.train)
        method.score(splits.query, _without_text(splits.gallery[:4]))
        method.embed(splits.gallery)  # own texts, to count every text of the fold
    facts = method.run_facts()["text"]
    assert facts["max_length"] == 48 and facts["cut"] == 0 and facts["cut_share"] == 0.0
    assert facts["texts"] == len({s.text for s in splits.train + splits.query + splits.gallery})
    assert 20 < facts["longest_tokens"] <= 48
    no_text, _ = _method("dmcl-no-text")
    no_text.fit(splits.train)
    assert no_text.run_facts() == {}


@pytest.mark.parametrize("dropout", [False, True])
def test_frozen_encoder_dropout_in_training(dropout):
    """text.frozen_dropout=false: a frozen encoder in eval mode, one cached feature per text;
    true (released): its dropout runs in training, every call differs; evaluation is eval-mode
    and cached either way."""
    method, splits = _method(sets=["text.frozen=true", f"text.frozen_dropout={dropout}"])
    net = method.build(splits.num_train_pids, splits.train)
    texts = sorted({s.text for s in splits.train})[:4]
    net.train()
    assert net.text_encoder.training is dropout
    with torch.no_grad():
        a, mask = net.text_tokens(texts)
        b, _ = net.text_tokens(texts)
    real = mask.unsqueeze(-1).expand_as(a)
    if dropout:
        assert not torch.allclose(a[real], b[real]) and len(net.text_cache) == 0
    else:
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert len(net.text_cache) == len(texts)
    assert not any(p.requires_grad for p in net.text_encoder.parameters())
    net.eval()
    with torch.no_grad():
        c, _ = net.text_tokens(texts)
        d, _ = net.text_tokens(texts)
    torch.testing.assert_close(c, d, rtol=0, atol=0)
    assert len(net.text_cache) == len(texts) and net.text_encoder.training is False


def test_pretrained_bert_positions_hold_the_default_max_length(tmp_path):
    """paper's 291 tokens fit bert-base-uncased's 512 positions; fewer positions are refused."""
    tok = bert.train_wordpiece_tokenizer(["a small polyp in the rectum"], 100)
    for positions in (512, 256):
        folder = tmp_path / f"bert{positions}"
        bert.build_bert(len(tok), 32, 1, 2, 64, max_positions=positions).save_pretrained(folder)
        tok.save_pretrained(folder)
    sets = ["model.pretrained=none", "model.depth=18", "fusion.heads=1", "fusion.width=32"]
    spec = get_method("dmcl")
    config, _ = resolve_config(
        spec, [], "paper", [*sets, f"text.pretrained={tmp_path / 'bert512'}"]
    )
    assert config["text.max_length"] == 291
    net = spec.family(config, RunContext(show_progress=False)).build(3)
    assert net.text_encoder.max_length == 291
    config, _ = resolve_config(
        spec, [], "paper", [*sets, f"text.pretrained={tmp_path / 'bert256'}"]
    )
    with pytest.raises(ConfigError, match="text.max_length 291 exceeds the BERT's 256 positions"):
        spec.family(config, RunContext(show_progress=False)).build(3)


# --------------------------------------------------------------------------- text key


def _tree(root: Path, polyps, texts: dict[str, str]) -> Path:
    for p in polyps:
        for screening in ("1", "2"):
            (root / p / screening).mkdir(parents=True)
            (root / p / screening / "f1.jpg").write_bytes(b"")
    (root / "sheet.json").write_text(json.dumps(texts))  # an object keeps the rows' order
    return root / "sheet.json"


def _texts(samples) -> dict[str, str | None]:
    return {s.clip.split("/")[0]: s.text for s in samples}


def test_text_key_polyp_and_patient(tmp_path):
    # a sheet of polyp ids, as Colo-Pair's: patient gjh's second row comes first
    sheet = _tree(tmp_path / "a", ["ch1", "gjh2", "gjh4"], {"gjh4": "G4", "ch1": "C", "gjh2": "G2"})
    root = sheet.parent
    assert _texts(read_colo_pair(root, sheet)) == {"ch1": "C", "gjh2": "G2", "gjh4": "G4"}
    # patient: the released matching (ids without their last character), first row in the sheet
    patient = _texts(read_colo_pair(root, sheet, text_key="patient"))
    assert patient == {"ch1": "C", "gjh2": "G4", "gjh4": "G4"}
    # a sheet of patient ids
    sheet = _tree(tmp_path / "b", ["A1", "A2", "B1"], {"A": "patient A", "B": "patient B"})
    assert sheet_key({"A": "x"}, "A7", "patient") == "A"
    got = _texts(read_colo_pair(sheet.parent, sheet, text_key="patient"))
    assert got == {"A1": "patient A", "A2": "patient A", "B1": "patient B"}
    # the chosen key finds no row: an error naming the sheet and the id it looked for
    with pytest.raises(DatasetError, match=r"b/sheet\.json has no row for polyp folder 'A1'.*"):
        read_colo_pair(sheet.parent, sheet)  # polyp: no id "A1"
    with pytest.raises(DatasetError, match=r"text_key=polyp looks for the id 'A1'"):
        read_colo_pair(sheet.parent, sheet)
    sheet = _tree(tmp_path / "c", ["ab1", "zz1"], {"ab1": "t"})
    with pytest.raises(DatasetError, match=r"c/sheet\.json.*'zz1'.*text_key=patient.*'zz'"):
        read_colo_pair(sheet.parent, sheet, text_key="patient")
    with pytest.raises(DatasetError, match="colo_pair.text_key must be one of polyp, patient"):
        read_colo_pair(sheet.parent, sheet, text_key="video")


def test_text_key_is_a_dataset_config_key(tmp_path):
    colo = get_dataset("colo-pair")
    root = tmp_path / "colo"
    _tree(root, ["ab1", "ab2", "cd1", "cd2"], {"ab1": "A", "ab2": "B", "cd": "C"})

    def load(key: str) -> dict[str, str | None]:
        config = dataset_config(colo, ["protocol.folds=2", f"colo_pair.text_key={key}"])
        splits = colo(root, config).load("fold0")
        return _texts(splits.train + splits.query + splits.gallery)

    assert colo.default_config["colo_pair"]["text_key"] == "polyp"
    with pytest.raises(DatasetError, match=r"sheet\.json has no row for polyp folder 'cd1'"):
        load("polyp")
    assert load("patient") == {"ab1": "A", "ab2": "A", "cd1": "C", "cd2": "C"}
    with pytest.raises(ConfigError, match="'colo_pair.text_key' must be one of polyp, patient"):
        dataset_config(colo, ["colo_pair.text_key=video"])
    # synthetic-polyp: one polyp per patient, so patient reads each polyp's own row
    synth = get_dataset("synthetic-polyp")
    by_key = {}
    for key in ("polyp", "patient"):
        config = dataset_config(synth, ["synthetic.identities=24", f"colo_pair.text_key={key}"])
        splits = synth(None, config).load("fold0")
        by_key[key] = _texts(splits.train + splits.query + splits.gallery)
    assert by_key["patient"] == by_key["polyp"] and len(by_key["polyp"]) == 24
