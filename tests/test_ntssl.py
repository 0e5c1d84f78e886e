"""NTSSL (issue 15, point 4): fragments, the temporal-temperature bags, the MIL-NCE terms, the
tracklet encoder, the supervision each variant trains under, and a tiny end-to-end run."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from bench.api.samples import Sample
from bench.config import resolve_config
from bench.engine.runner import RunRequest, fit, run
from bench.errors import BenchError
from bench.plugins import get_dataset, get_method, load_plugins

load_plugins()
ntssl = get_method("ntssl").family
mod = __import__(ntssl.__module__, fromlist=["x"])


def frames(clip: str, video: str, start: int, count: int, pid: int = -1) -> list[Sample]:
    return [
        Sample(f"/x/{clip}_{f}.jpg", pid, 0, clip=clip, frame=f, video=video, box=(1, 1, 4, 4))
        for f in range(start, start + count)
    ]


# --------------------------------------------------------------------------- data side


def test_crop_is_the_box_scaled_about_its_centre_and_clamped() -> None:
    assert mod.crop_box((40, 40, 10, 20), 3.0, 100, 100) == (30, 20, 60, 80)
    # 5x a box near the corner is clamped to the frame
    assert mod.crop_box((2, 3, 10, 10), 5.0, 96, 96) == (0, 0, 32, 33)


def test_fragments_are_strided_runs_of_one_tracklet_with_video_positions() -> None:
    samples = frames("a", "v1", 0, 35) + frames("b", "v1", 40, 21) + frames("c", "v2", 0, 33)
    samples = samples[::-1]  # any order in, frame order out
    out = mod.make_fragments(samples, length=4, stride=4)
    by_clip = Counter(f.frames[0].clip for f in out)
    assert by_clip == {"a": 2, "b": 1, "c": 2}  # 9 strided frames -> 2 (last dropped), 6 -> 1
    a0 = next(f for f in out if f.frames[0].clip == "a")
    assert [s.frame for s in a0.frames] == [0, 4, 8, 12]
    b0 = next(f for f in out if f.frames[0].clip == "b")
    assert b0.position == pytest.approx(40 / 60)  # v1 spans frames 0..60
    assert {f.video for f in out} == {"v1", "v2"}


def test_bag_temperature_follows_a_cosine_from_t_min_to_t_max() -> None:
    assert mod.bag_temperature(0, 50, 0.3, 12) == pytest.approx(0.3)
    assert mod.bag_temperature(25, 50, 0.3, 12) == pytest.approx(0.3 + 0.5 * 11.7)
    assert mod.bag_temperature(49, 50, 0.3, 12) == pytest.approx(
        0.3 + 0.5 * (1 - math.cos(math.pi * 49 / 50)) * 11.7
    )


def test_ranks_are_distinct_and_drawn_with_probability_exp_minus_r_over_t() -> None:
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        r = mod.draw_ranks(10, 4, 2.0, g)
        assert len(set(r.tolist())) == 4 and r.min() >= 1 and r.max() <= 9
    assert sorted(mod.draw_ranks(10, 4, 1e-3, g).tolist()) == [1, 2, 3, 4]  # T -> 0: nearest
    t, n = 1.5, 20000
    counts = Counter(int(mod.draw_ranks(6, 1, t, g)) for _ in range(n))
    weights = [math.exp(-r / t) for r in range(1, 6)]
    for r in range(1, 6):
        assert counts[r] / n == pytest.approx(weights[r - 1] / sum(weights), abs=0.015)


def _fragments(per_video: dict[str, int]) -> list:
    out = []
    for video, count in per_video.items():
        for i in range(count):
            out.append(
                mod.Fragment(tuple(frames(f"{video}{i}", video, i * 10, 1)), video, i / count, i)
            )
    return out


def test_bags_stay_in_one_video_and_every_fragment_anchors_once() -> None:
    fragments = _fragments({"v1": 9, "v2": 7, "v3": 6})
    sampler = mod.TemporalTemperatureBags(
        fragments, k=5, bags=3, t_min=0.3, t_max=12, epochs=10, seed=1
    )
    bags = sampler.bag_indices()
    assert bags.shape == (22, 5)
    assert sorted(bags[:, 0].tolist()) == list(range(22))  # rank 0 is the anchor itself
    for bag in bags.tolist():
        assert len(set(bag)) == 5
        assert len({fragments[i].video for i in bag}) == 1
    batches = list(sampler)
    assert len(batches) == len(sampler) == 22 // 3  # 7 full batches of 15, the rest dropped
    assert all(len(b) == 15 for b in batches)
    assert batches[0][:5] == bags[0].tolist()  # a batch is whole bags, k consecutive
    assert torch.equal(sampler.bag_indices(), bags)  # seeded per epoch (resume draws the same)
    sampler.set_epoch(1)
    assert not torch.equal(sampler.bag_indices(), bags)


def test_cold_bags_are_temporal_neighbours() -> None:
    fragments = _fragments({"v1": 30})
    sampler = mod.TemporalTemperatureBags(
        fragments, k=3, bags=2, t_min=0.01, t_max=12, epochs=10, seed=0
    )
    bags = sampler.bag_indices()  # epoch 0: T = 0.01, the two nearest in time
    for bag in bags.tolist():
        anchor = bag[0]
        assert sorted(abs(i - anchor) for i in bag[1:]) in ([1, 1], [1, 2])


def test_a_video_with_too_few_fragments_is_refused_with_its_frame() -> None:
    with pytest.raises(BenchError, match=r"video of /x/v20_0\.jpg has 3; lower sampler\.k"):
        mod.TemporalTemperatureBags(
            _fragments({"v1": 8, "v2": 3}), k=5, bags=2, t_min=0.3, t_max=12, epochs=1, seed=0
        )


def test_identity_bags_hold_k_fragments_of_each_of_bags_identities() -> None:
    fragments = [
        mod.Fragment(tuple(frames(f"c{p}{i}", "v", 0, 1)), "v", 0.0, p)
        for p in range(6)
        for i in range(7 + p)
    ]
    sampler = mod.IdentityBags(fragments, k=3, bags=4, seed=0)
    seen: list[int] = []
    for batch in sampler:
        counts = Counter(fragments[i].pid for i in batch)
        assert len(counts) == 4 and set(counts.values()) == {3}
        seen += batch
    assert len(seen) == len(set(seen)) > 0  # without replacement over the epoch
    with pytest.raises(BenchError, match="needs 4 identities with 3 fragments"):
        mod.IdentityBags(fragments[:20], k=3, bags=4, seed=0)


# --------------------------------------------------------------------------- losses


def _brute_mil_nce(z: torch.Tensor, y: torch.Tensor, t: float) -> float:
    z = torch.nn.functional.normalize(z.double(), dim=-1)
    total = 0.0
    for i in range(len(z)):
        s = [math.exp(float(z[i] @ z[j]) / t) for j in range(len(z))]
        pos = sum(s[j] for j in range(len(z)) if j != i and y[j] == y[i])
        alls = sum(s[j] for j in range(len(z)) if j != i)
        total += -math.log(pos / alls)
    return total / len(z)


def test_mil_nce_is_minus_log_of_positive_mass_over_all_others() -> None:
    torch.manual_seed(0)
    z, y = torch.randn(12, 8), torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    assert float(mod.mil_nce(z, y, 0.5)) == pytest.approx(_brute_mil_nce(z, y, 0.5), rel=1e-5)
    with pytest.raises(BenchError, match="no positive"):
        mod.mil_nce(z, torch.arange(12), 0.5)


def test_multi_positive_contrastive_is_cross_entropy_to_uniform_positives() -> None:
    torch.manual_seed(1)
    z, y = torch.randn(8, 5), torch.tensor([0, 0, 1, 1, 1, 2, 2, 0])
    zn = torch.nn.functional.normalize(z.double(), dim=-1)
    expected = 0.0
    for i in range(8):
        logits = torch.tensor([float(zn[i] @ zn[j]) / 0.1 for j in range(8) if j != i])
        others = [j for j in range(8) if j != i]
        logp = torch.log_softmax(logits, 0)
        pos = [n for n, j in enumerate(others) if y[j] == y[i]]
        expected += -float(logp[pos].mean())
    got = float(mod.multi_positive_contrastive(z, y, 0.1))
    assert got == pytest.approx(expected / 8, rel=1e-5)


def test_the_three_terms_label_fragments_by_bag_and_frames_by_bag_and_fragment() -> None:
    torch.manual_seed(2)
    b, s, k, t = 6, 4, 3, 0.07
    z = torch.randn(b, 1 + s, 16)
    total, values = mod.ntssl_loss(z, k, t, [1.0, 0.5, 2.0])
    bag = torch.tensor([0, 0, 0, 1, 1, 1])
    frames = z[:, 1:].reshape(b * s, -1)
    expect = [
        _brute_mil_nce(z[:, 0], bag, t),
        _brute_mil_nce(frames, bag.repeat_interleave(s), t),
        _brute_mil_nce(frames, torch.arange(b).repeat_interleave(s), t),
    ]
    assert values == pytest.approx(expect, rel=1e-4)
    assert float(total) == pytest.approx(expect[0] + 0.5 * expect[1] + 2 * expect[2], rel=1e-4)
    only_first, values = mod.ntssl_loss(z, k, t, [1.0, 0.0, 0.0])  # InfoNCE-only weights
    assert float(only_first) == pytest.approx(expect[0], rel=1e-4)
    assert math.isnan(values[1]) and math.isnan(values[2])


# --------------------------------------------------------------------------- the network


def _tiny_config(**over) -> dict:
    spec = get_method("ntssl")
    sets = {
        "model.depth": 18,
        "model.width": 8,
        "model.pretrained": "none",
        "model.dim": 32,
        "model.heads": 4,
        "model.ffn": 64,
        "model.proj_hidden": 32,
        "model.proj_dim": 16,
        "input.size": 32,
        **over,
    }
    config, _ = resolve_config(spec, [get_dataset("synthetic-colonoscopy")], "paper", sets)
    return config


def test_encoder_is_the_released_architecture() -> None:
    released = {"model.dim": 256, "model.heads": 8, "model.ffn": 1024, "model.proj_hidden": 256}
    net = mod.NTSSLNet(_tiny_config(**released, **{"model.proj_dim": 128}))
    enc = net.encoder
    assert torch.count_nonzero(enc.cls_token) == 0  # zero-initialised CLS
    assert len(enc.encoder.layers) == 3
    layer = enc.encoder.layers[0]
    assert layer.norm_first is False and layer.self_attn.num_heads == 8
    assert layer.linear1.out_features == 1024 and layer.dropout.p == 0.1
    assert enc.encoder.norm is None  # no final norm (use_encoder_norm off)
    assert enc.adapter.in_features == enc.backbone.out_channels and enc.adapter.out_features == 256
    assert [m.out_features for m in net.projector if isinstance(m, torch.nn.Linear)] == [256, 128]
    # no positional encoding: permuting frames permutes frame tokens, the CLS is unchanged
    enc.eval()
    feats = torch.randn(2, 5, enc.backbone.out_channels)
    perm = torch.tensor([3, 0, 4, 1, 2])
    with torch.no_grad():
        a, b = enc.tokens(feats), enc.tokens(feats[:, perm])
    assert torch.allclose(a[:, 0], b[:, 0], atol=1e-5)
    assert torch.allclose(a[:, 1:][:, perm], b[:, 1:], atol=1e-5)


def test_paper_preset_is_the_released_recipe() -> None:
    spec = get_method("ntssl")
    c, _ = resolve_config(spec, [get_dataset("polyp-tracklets")], "paper", [])
    assert (c["model.depth"], c["model.dim"], c["model.proj_dim"]) == (50, 256, 128)
    assert (c["fragment.length"], c["fragment.stride"], c["eval.stride"]) == (8, 4, 4)
    assert (c["input.size"], c["input.box_scale"], c["input.normalize"]) == (232, 5.0, "both")
    assert (c["sampler.bags"], c["sampler.k"], c["sampler.t_min"], c["sampler.t_max"]) == (
        12,
        5,
        0.3,
        12.0,
    )
    assert (c["loss.temperature"], c["optim.lr"], c["optim.weight_decay"]) == (0.07, 1e-5, 1e-4)
    assert c["train.epochs"] == 50 and c["loss.positives"] == "bag"


def test_each_variant_is_one_config_key_and_only_supcon_sees_labels() -> None:
    ds = [get_dataset("synthetic-colonoscopy")]
    base, _ = resolve_config(get_method("ntssl"), ds, "quick", [])
    for name, key, value, supervision in [
        ("ntssl", None, None, "self"),
        ("ntssl-infonce", "loss.positives", "one", "self"),
        ("ntssl-supcon", "loss.positives", "identity", "identity"),
        ("ntssl-untrained", "train.epochs", 0, "self"),
    ]:
        config, _ = resolve_config(get_method(name), ds, "quick", [])
        diff = {k for k in config if config[k] != base[k]}
        assert diff == (set() if key is None else {key}) and (key is None or config[key] == value)
        assert ntssl.supervision_for(config) == supervision


class _Ctx:
    device = torch.device("cpu")
    seed = 0
    workers = 0
    rank = 0
    world_size = 1

    def progress(self, iterable, desc, total=None):
        return iterable


def test_the_test_embedding_is_the_cls_before_the_projector_every_stride_th_frame(
    tmp_path,
) -> None:
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    clip = []
    for f in range(9):
        pixels = torch.randint(0, 256, (40, 48, 3), generator=g, dtype=torch.uint8).numpy()
        path = tmp_path / f"f{f}.png"
        Image.fromarray(pixels).save(path)
        clip.append(Sample(str(path), -1, 0, clip="c", frame=f, video="v", box=(30, 4, 8, 6)))
    method = ntssl(_tiny_config(**{"eval.stride": 4}), _Ctx())
    net = method.build().eval()
    got = method.embed_clips([clip])  # the harness gives each clip's frames in order
    c = method.config
    x = torch.stack([mod.load_crop(s, 5.0, c["input.size"], True) for s in clip[::4]])
    with torch.no_grad():
        expected = net.encoder(x[None])[0, 0]
    assert got.shape == (1, c["model.dim"])
    assert torch.allclose(got[0], expected, atol=1e-5)
    # the crop: the box scaled 5x about its centre, clamped to the 48x40 frame
    assert mod.crop_box((30, 4, 8, 6), 5.0, 48, 40) == (14, 0, 48, 22)
    raw = mod.load_crop(clip[0], 5.0, 16, False)
    assert raw.shape == (3, 16, 16) and float(raw.min()) >= 0 and float(raw.max()) <= 1
    normed = mod.load_crop(clip[0], 5.0, 16, True)
    assert torch.allclose(normed, (raw - 0.45) / 0.225)


def test_the_harness_gives_labels_only_to_the_supervised_variant(monkeypatch) -> None:
    seen: dict[str, list[int]] = {}
    monkeypatch.setattr(ntssl, "fit", lambda self, train: seen.update(pids=[s.pid for s in train]))
    train = frames("a", "v", 0, 3, pid=0) + frames("b", "v", 5, 3, pid=1)
    fit(ntssl(_tiny_config(), _Ctx()), train)
    assert set(seen["pids"]) == {-1}
    fit(ntssl(_tiny_config(**{"loss.positives": "identity"}), _Ctx()), train)
    assert seen["pids"] == [0, 0, 0, 1, 1, 1]


def test_preflight_refuses_what_cannot_train() -> None:
    with pytest.raises(BenchError, match="three weights"):
        ntssl.preflight(_tiny_config(**{"loss.weights": [1.0, 1.0]}))  # the README's two
    with pytest.raises(BenchError, match="divisible by model.heads"):
        ntssl.preflight(_tiny_config(**{"model.heads": 5}))


# --------------------------------------------------------------------------- end to end


TINY = [
    "model.depth=18",
    "model.width=8",
    "model.dim=32",
    "model.heads=4",
    "model.ffn=64",
    "model.proj_hidden=32",
    "model.proj_dim=16",
    "input.size=32",
    "sampler.bags=2",
    "train.epochs=1",
]


@pytest.mark.parametrize("method", ["ntssl", "ntssl-supcon"])
def test_a_tiny_run_trains_and_the_harness_scores_every_protocol(tmp_path, method) -> None:
    request = RunRequest(
        method=method,
        dataset="synthetic-colonoscopy",
        preset="quick",
        sets=TINY,
        results_dir=tmp_path / "results",
        progress=False,
    )
    (record,) = run(request)
    m = record["metrics"]
    for key in ("mAP", "HR@1", "HR@5", "AUROC", "AP", "size_F1", "histology_acc"):
        assert 0 <= m[key] <= 1, key
    assert m["num_tracklets"] == 25
    facts = record["method_facts"]
    assert facts["supervision"] == ("identity" if method == "ntssl-supcon" else "self")
    assert facts["train_fragments"] > 0
    assert len(record["history"]) == 1 and record["history"][0]["loss"] > 0
