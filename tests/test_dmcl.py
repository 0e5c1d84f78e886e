"""DMCL: text dependence of the variants, batched query-conditioned scoring, presets, learning."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bench.config import resolve_config
from bench.engine.context import RunContext, seed_everything
from bench.engine.runner import RunRequest, prepare_run
from bench.errors import ConfigError, WeightsNotFoundError
from bench.evaluation.protocol import evaluate, get_protocol
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


def _method(name: str, sets=(), preset: str = "quick"):
    spec = get_method(name)
    data_cls = get_dataset("synthetic-polyp")
    config, _ = resolve_config(spec, [data_cls], preset, [*TINY, *sets])
    splits = data_cls(None, config).load("fold0")
    method = spec.family(config, RunContext(show_progress=False))
    return method, splits


def _retexted(samples, text: str):
    return [dataclasses.replace(s, text=text) for s in samples]


@pytest.fixture(scope="module")
def built():
    """Untrained dmcl and dmcl-no-text networks (the tokenizer trained on fold0's texts)."""
    out = {}
    for name in ("dmcl", "dmcl-no-text", "dmcl-no-image", "dmcl-baseline"):
        seed_everything(0)
        method, splits = _method(name)
        method.build(splits.num_train_pids, splits.train)
        out[name] = method
    return out, splits


def test_dmcl_output_changes_with_text_and_no_text_variant_does_not(built):
    methods, splits = built
    query = splits.query[:6]
    other = _retexted(query, "a pale flat polyp of 19 mm in the rectum")
    a, b = methods["dmcl"].embed(query), methods["dmcl"].embed(other)
    assert not torch.allclose(a, b, atol=1e-4)
    for name in ("dmcl-no-text", "dmcl-baseline"):
        x, y = methods[name].embed(query), methods[name].embed(other)
        torch.testing.assert_close(x, y, rtol=0, atol=0)
        assert methods[name].net.text_encoder is None  # no text encoder at all
    # w/o image: the image does not matter, only the text does
    no_img = methods["dmcl-no-image"]
    assert not hasattr(no_img.net, "backbone")
    swapped = [dataclasses.replace(s, path=query[0].path) for s in query]
    torch.testing.assert_close(no_img.embed(query), no_img.embed(swapped), rtol=0, atol=0)
    assert not torch.allclose(no_img.embed(query), no_img.embed(other), atol=1e-4)


def test_variants_differ_from_dmcl_in_one_key():
    base, _ = resolve_config(get_method("dmcl"), [], "quick")
    for name in ("dmcl-no-text", "dmcl-no-image", "dmcl-baseline"):
        cfg, _ = resolve_config(get_method(name), [], "quick")
        diff = {k for k in cfg if cfg[k] != base[k]}
        assert len(diff) == 1 and next(iter(diff)).startswith("dmcl."), (name, diff)
    assert get_method("dmcl-no-text").modalities == {"image"}
    assert get_method("dmcl-no-image").modalities == {"text"}


def test_gallery_text_mode_selects_the_api(built):
    methods, _ = built
    assert methods["dmcl"].answers == "score"  # every preset: the query's text (the fair mode)
    assert methods["dmcl-no-text"].answers == "embed"
    own_mode, _ = _method("dmcl", ["dmcl.gallery_text=own", "protocol.oracle_gallery_text=true"])
    assert own_mode.answers == "embed"
    for preset in ("paper", "released", "quick"):
        config, _ = resolve_config(get_method("dmcl"), [], preset)
        assert config["dmcl.gallery_text"] == "query", preset
    assert config["text.frozen"] is False
    released, _ = resolve_config(get_method("dmcl"), [], "released")
    assert released["text.frozen"] is True


@pytest.mark.parametrize("frozen", [False, True])
def test_batched_scores_equal_the_naive_loop(frozen):
    """score() (grouped by distinct text, gallery image tokens reused, chunks spanning texts)
    equals one full pass per query."""
    from bench.plugins.methods.dmcl import naive_score, score_from_tokens

    seed_everything(0)
    method, splits = _method("dmcl", ["dmcl.gallery_text=query", f"text.frozen={frozen!s}"])
    method.build(splits.num_train_pids, splits.train)
    net = method.net.eval()
    texts = sorted({s.text for s in splits.train})
    query = [dataclasses.replace(s, text=texts[i % 3]) for i, s in enumerate(splits.query[:7])]
    gallery = splits.gallery[:11]
    from bench.data.images import image_loader
    from bench.data.transforms import build_test_transform

    def images(samples):
        loader = image_loader(samples, build_test_transform(32, 32), 64)
        return torch.cat([b["image"] for b in loader])

    q_img, g_img = images(query), images(gallery)
    expected = naive_score(net, q_img, [s.text for s in query], g_img)
    for chunk in (5, 11, 1000):  # chunks within, at and across text boundaries
        got = score_from_tokens(
            net,
            net.image_tokens(q_img),
            [s.text for s in query],
            net.image_tokens(g_img),
            batch=chunk,
        )
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    via_api = method.score(query, gallery)
    torch.testing.assert_close(via_api, expected, atol=1e-5, rtol=1e-5)
    if frozen:
        assert len(net.text_cache) == 3  # one entry per distinct text


def test_paper_and_released_stop_before_training_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    for preset in ("paper", "released"):
        request = RunRequest(method="dmcl", dataset="synthetic-polyp", preset=preset)
        with pytest.raises(WeightsNotFoundError, match=r"--set model\.pretrained="):
            prepare_run(request)
        no_img = RunRequest(
            method="dmcl",
            dataset="synthetic-polyp",
            preset=preset,
            sets=["model.pretrained=none"],
        )
        with pytest.raises(WeightsNotFoundError, match=r"--set text\.pretrained="):
            prepare_run(no_img)


def test_bad_combinations_are_config_errors():
    with pytest.raises(ConfigError, match="dmcl.fusion"):
        prepare_run(
            RunRequest(
                method="dmcl-no-image",
                dataset="synthetic-polyp",
                preset="quick",
                sets=["dmcl.fusion=false"],
            )
        )
    with pytest.raises(ConfigError, match="fusion.heads"):
        prepare_run(
            RunRequest(
                method="dmcl", dataset="synthetic-polyp", preset="quick", sets=["fusion.heads=3"]
            )
        )


def test_state_round_trip_keeps_tokenizer_and_features(built):
    methods, splits = built
    method = methods["dmcl"]
    state = method.state_dict()
    fresh, _ = _method("dmcl")
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.embed(splits.query[:4]), method.embed(splits.query[:4]))


def test_quick_training_beats_untrained():
    """DMCL quick, trained 6 epochs on one fold, must clearly beat its untrained network. Measured
    with each gallery image's own text (``gallery_text=own``, an oracle on synthetic-polyp's
    identity-level texts): in the fair query-text mode neither network ranks much above chance."""
    spec = get_method("dmcl")
    data_cls = get_dataset("synthetic-polyp")
    sets = ["train.epochs=6", "dmcl.gallery_text=own", "protocol.oracle_gallery_text=true"]
    config, _ = resolve_config(spec, [data_cls], "quick", sets)
    splits = data_cls(None, config).load("fold0")
    protocol = get_protocol("colo-pair")

    def mAP(method) -> float:
        q, g = method.embed(splits.query), method.embed(splits.gallery)
        return evaluate(
            protocol, splits.query, splits.gallery, query_features=q, gallery_features=g
        ).mAP

    seed_everything(0)
    untrained = spec.family(config, RunContext(show_progress=False))
    untrained.build(splits.num_train_pids, splits.train)
    before = mAP(untrained)
    seed_everything(0)
    trained = spec.family(config, RunContext(show_progress=False))
    trained.fit(splits.train)
    after = mAP(trained)
    print(f"mAP untrained {before:.3f} -> trained {after:.3f}")
    assert after > before + 0.15, (before, after)


def test_released_preset_with_local_bert_folder(tmp_path):
    """The released wiring end to end at a tiny size: a BERT loaded from a local folder, frozen
    with its dropout active in training (cached per text for evaluation only), padding to
    max_length attended, Linear+BN+Dropout image projection, multi-similarity-mined triplet,
    query-conditioned score()."""
    from bench.backbones.bert import build_bert, train_wordpiece_tokenizer

    data_cls = get_dataset("synthetic-polyp")
    probe, _ = resolve_config(get_method("dmcl"), [data_cls], "quick", TINY)
    splits = data_cls(None, probe).load("fold0")
    tokenizer = train_wordpiece_tokenizer([s.text for s in splits.train], 300)
    folder = tmp_path / "bert"
    build_bert(len(tokenizer), 32, 1, 2, 64, max_positions=64).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    sets = [
        "synthetic.identities=24",
        "model.pretrained=none",
        "model.depth=18",
        "model.width=8",
        f"text.pretrained={folder}",
        "text.max_length=40",
        "fusion.width=32",
        "fusion.ffn=64",
        "input.height=32",
        "input.width=32",
        "sampler.p=4",
        "train.epochs=1",
    ]
    config, _ = resolve_config(get_method("dmcl"), [data_cls], "released", sets)
    assert config["loss.triplet"] == "ms-margin" and config["fusion.mask_padding"] is False
    seed_everything(0)
    method = get_method("dmcl").family(config, RunContext(show_progress=False))
    method.fit(splits.train)
    net = method.net
    assert method.answers == "score"
    assert not any(p.requires_grad for p in net.text_encoder.parameters())
    assert len(net.text_cache) == 0  # training encoded every batch's texts anew, dropout on
    assert isinstance(net.image_proj[1], torch.nn.BatchNorm1d)
    scores = method.score(splits.query[:5], splits.gallery[:9])
    assert len(net.text_cache) == len({s.text for s in splits.query[:5]})
    assert scores.shape == (5, 9) and torch.isfinite(scores).all()
    assert float(scores.abs().max()) <= 1.0 + 1e-5  # cosine similarities
