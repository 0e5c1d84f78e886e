"""Text building blocks (tokenizer, BERT, offline lookup, feature cache) and the fusion encoder."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bench.backbones.bert import (
    TextEncoder,
    TextFeatureCache,
    build_bert,
    load_pretrained_bert,
    resolve_bert,
    tokenizer_from_json,
    tokenizer_to_json,
    train_wordpiece_tokenizer,
)
from bench.errors import WeightsNotFoundError
from bench.layers.fusion import FusionEncoder, FusionLayer
from bench.layers.positions import sinusoidal_positions

TEXTS = [
    "A reddish sessile polyp of 5 mm in the sigmoid colon.",
    "Pale pedunculated polyp, 12 mm, located in the rectum.",
    "A pink flat lesion of 8 mm in the ascending colon.",
]


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece_tokenizer(TEXTS, vocab_size=200)


def test_wordpiece_tokenizer_trained_on_texts(tokenizer):
    ids = tokenizer(TEXTS[0])["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert "[UNK]" not in tokens and "sigmoid" in tokens  # a vocabulary from the texts, lowercased
    assert tokenizer.pad_token_id == 0 and tokenizer.vocab_size <= 200
    again = tokenizer_from_json(tokenizer_to_json(tokenizer))
    assert again(TEXTS[1])["input_ids"] == tokenizer(TEXTS[1])["input_ids"]
    other = tokenizer(TEXTS[1])["input_ids"]
    assert other != ids
    unseen = tokenizer.convert_ids_to_tokens(tokenizer("Corals polyp")["input_ids"])
    assert "[UNK]" not in unseen and "c" in unseen  # an unseen word spelled in pieces


def test_tokenizer_is_deterministic():
    """The same texts give the same vocabulary and ids every time (runs must repeat)."""
    many = [f"{t} variant {i}" for i in range(20) for t in TEXTS]
    first = tokenizer_to_json(train_wordpiece_tokenizer(many, vocab_size=90))
    for _ in range(3):
        assert tokenizer_to_json(train_wordpiece_tokenizer(list(reversed(many)), 90)) == first


def test_text_encoder_shapes_and_padding(tokenizer):
    torch.manual_seed(0)
    enc = TextEncoder(build_bert(tokenizer.vocab_size, 32, 1, 2, 64), tokenizer, max_length=24)
    enc.eval()
    feats, mask = enc(TEXTS)
    assert feats.shape[:2] == mask.shape and feats.shape[2] == 32 and mask.dtype == torch.bool
    single, m1 = enc(TEXTS[2:])
    n = int(m1.sum())
    # the same text alone or in a padded batch: the same features on its real tokens
    torch.testing.assert_close(single[0, :n], feats[2, :n], atol=1e-5, rtol=1e-5)
    enc.pad_to_max = True
    padded, pm = enc(TEXTS[:1])
    assert padded.shape[1] == 24 and int(pm.sum()) < 24


def test_token_lengths_count_before_truncation(tokenizer):
    enc = TextEncoder(build_bert(tokenizer.vocab_size, 32, 1, 2, 64), tokenizer, max_length=8)
    lengths = enc.token_lengths(TEXTS)
    assert lengths == [len(tokenizer(t)["input_ids"]) for t in TEXTS]
    assert all(n > 8 for n in lengths)  # every text is longer than max_length ...
    assert enc.tokenize(TEXTS)["input_ids"].shape == (3, 8)  # ... and tokenize() cuts it


def test_feature_cache_encodes_each_text_once(tokenizer, monkeypatch):
    torch.manual_seed(0)
    enc = TextEncoder(build_bert(tokenizer.vocab_size, 32, 1, 2, 64), tokenizer, max_length=24)
    enc.eval()
    calls: list[list[str]] = []
    original = TextEncoder.forward

    def counting(self, texts):
        calls.append(list(texts))
        return original(self, texts)

    monkeypatch.setattr(TextEncoder, "forward", counting)
    cache = TextFeatureCache(enc)
    feats, mask = cache.lookup([TEXTS[0], TEXTS[1], TEXTS[0]])
    again, _ = cache.lookup([TEXTS[1], TEXTS[0]])
    assert sum(len(c) for c in calls) == 2 and len(cache) == 2
    direct, dmask = original(enc, [TEXTS[0], TEXTS[1]])
    with torch.no_grad():
        for i, j in ((0, 0), (1, 1), (2, 0)):
            n = int(dmask[j].sum())
            torch.testing.assert_close(feats[i, :n], direct[j, :n].detach(), atol=1e-5, rtol=0)
            assert mask[i].sum() == n
    torch.testing.assert_close(again[1], feats[0])


def test_pretrained_bert_round_trip_and_offline_errors(tokenizer, tmp_path):
    torch.manual_seed(0)
    bert = build_bert(tokenizer.vocab_size, 32, 1, 2, 64)
    folder = tmp_path / "tiny-bert"
    bert.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    assert resolve_bert(str(folder)) == folder
    model, tok = load_pretrained_bert(folder)
    assert tok(TEXTS[0])["input_ids"] == tokenizer(TEXTS[0])["input_ids"]
    ids = torch.tensor([tok(TEXTS[0])["input_ids"]])
    bert.eval(), model.eval()
    torch.testing.assert_close(model(ids).last_hidden_state, bert(ids).last_hidden_state)

    with pytest.raises(WeightsNotFoundError, match=r"--set text\.pretrained="):
        resolve_bert(str(tmp_path / "absent"))
    with pytest.raises(WeightsNotFoundError, match=r"bert-base-uncased.*--set text\.pretrained="):
        resolve_bert("bert-base-uncased", cache_dir=tmp_path / "empty-hub")
    (tmp_path / "no-weights").mkdir()
    (tmp_path / "no-weights" / "config.json").write_text("{}")
    with pytest.raises(WeightsNotFoundError, match="lacks model.safetensors"):
        resolve_bert(str(tmp_path / "no-weights"))


def test_sinusoidal_positions_values():
    pe = sinusoidal_positions(5, 6)
    assert pe[0].tolist() == pytest.approx([0, 1, 0, 1, 0, 1])
    assert pe[3, 2].item() == pytest.approx(math.sin(3 / 10000 ** (2 / 6)), rel=1e-5)
    assert pe[3, 3].item() == pytest.approx(math.cos(3 / 10000 ** (2 / 6)), rel=1e-5)
    assert sinusoidal_positions(4, 5).shape == (4, 5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_fusion_layer_equals_torch_encoder_layer(norm_first):
    torch.manual_seed(0)
    ours = FusionLayer(16, 4, 32, dropout=0.0, norm_first=norm_first).eval()
    ref = nn.TransformerEncoderLayer(
        16, 4, 32, dropout=0.0, batch_first=True, norm_first=norm_first
    ).eval()
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(ours.qkv.weight)
        ref.self_attn.in_proj_bias.copy_(ours.qkv.bias)
        ref.self_attn.out_proj.weight.copy_(ours.proj.weight)
        ref.self_attn.out_proj.bias.copy_(ours.proj.bias)
        ref.linear1.load_state_dict(ours.fc1.state_dict())
        ref.linear2.load_state_dict(ours.fc2.state_dict())
        ref.norm1.load_state_dict(ours.norm1.state_dict())
        ref.norm2.load_state_dict(ours.norm2.state_dict())
    x = torch.randn(3, 7, 16)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 5:] = False
    expected = ref(x, src_key_padding_mask=~mask)
    got = ours(x, mask)
    torch.testing.assert_close(got[0], expected[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[1, :5], expected[1, :5], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_fusion_first_only_and_padding_mask(norm_first):
    torch.manual_seed(0)
    enc = FusionEncoder(16, 3, 4, 32, dropout=0.0, norm_first=norm_first, max_length=10).eval()
    x = torch.randn(2, 6, 16)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    full = enc(x, mask)
    first = enc(x, mask, first_only=True)
    torch.testing.assert_close(first, full[:, 0], atol=1e-5, rtol=1e-5)
    changed = x.clone()
    changed[0, 4:] = 100.0  # padding content does not matter under the mask
    torch.testing.assert_close(enc(changed, mask, first_only=True)[0], first[0])
    changed[0, 2] += torch.randn(16)  # a real token does
    assert not torch.allclose(enc(changed, mask, first_only=True)[0], first[0])


def test_fusion_without_affine_norms_or_bias_has_no_such_parameters():
    enc = FusionEncoder(8, 1, 2, 16, bias=False, norm_affine=False)
    names = [n for n, _ in enc.named_parameters()]
    assert not any("norm" in n or n.endswith("bias") for n in names)
