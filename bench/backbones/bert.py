"""Text encoders for multimodal ReID: BERT (Devlin et al. 2019) built from a config or loaded from
local pretrained files, WordPiece tokenizers trained on a dataset's texts, and a cache of a frozen
encoder's token features.

Nothing here downloads. ``"bert-base-uncased"`` is looked up in the Hugging Face cache only
(``HF_HUB_CACHE``); any other value is a folder written by ``save_pretrained`` (``config.json``,
the weights, the tokenizer files). Tokenizers are wrapped in ``PreTrainedTokenizerFast``: in
transformers 5.x ``BertTokenizerFast(vocab_file=...)`` silently ignores the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from bench.errors import BenchError, WeightsNotFoundError

if TYPE_CHECKING:
    from transformers import BertModel, PreTrainedTokenizerFast

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def train_wordpiece_tokenizer(
    texts: Iterable[str], vocab_size: int = 1000, lowercase: bool = True
) -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokenizer for ``texts`` (BERT's normaliser and pre-tokeniser,
    ``[CLS] text [SEP]``), wrapped in ``PreTrainedTokenizerFast``.

    The vocabulary is built deterministically: the special tokens, every character seen (alone
    and as a ``##`` continuation, so no word is ever ``[UNK]``), then whole words by descending
    frequency (ties by spelling) up to ``vocab_size``. WordPiece's greedy longest match then
    keeps known words whole and spells unseen ones in pieces. (``tokenizers``'
    ``WordPieceTrainer`` breaks ties differently in every process, so runs would not repeat.)
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    corpus = sorted({t for t in texts if t})
    if not corpus:
        raise BenchError("cannot build a tokenizer: the training split has no texts")
    normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: dict[str, int] = {}
    for text in corpus:
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)):
            counts[word] = counts.get(word, 0) + 1
    chars = sorted({ch for word in counts for ch in word})
    vocab = list(SPECIAL_TOKENS) + chars + [f"##{ch}" for ch in chars]
    if vocab_size < len(vocab):
        raise BenchError(
            f"text.vocab_size {vocab_size} is too small: the texts need {len(vocab)} tokens "
            "for their characters alone"
        )
    words = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))
    vocab += words[: vocab_size - len(vocab)]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.WordPiece()
    _add_cls_sep(tok)
    return wrap_tokenizer(tok)


def _add_cls_sep(tok: object) -> None:
    from tokenizers import processors

    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")  # type: ignore[attr-defined]
    tok.post_processor = processors.TemplateProcessing(  # type: ignore[attr-defined]
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )


def wrap_tokenizer(tok: object) -> PreTrainedTokenizerFast:
    """A ``tokenizers.Tokenizer`` as a transformers tokenizer with BERT's special tokens."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def tokenizer_to_json(tokenizer: PreTrainedTokenizerFast) -> str:
    """The tokenizer as a JSON string (to store it inside a checkpoint)."""
    return tokenizer.backend_tokenizer.to_str()


def tokenizer_from_json(text: str) -> PreTrainedTokenizerFast:
    """Inverse of :func:`tokenizer_to_json`."""
    from tokenizers import Tokenizer

    return wrap_tokenizer(Tokenizer.from_str(text))


def build_bert(
    vocab_size: int,
    hidden: int = 128,
    layers: int = 2,
    heads: int = 2,
    intermediate: int = 512,
    max_positions: int = 512,
    dropout: float = 0.1,
) -> BertModel:
    """A randomly initialised ``BertModel`` (no pooler) from these sizes."""
    from transformers import BertConfig, BertModel

    if hidden % heads:
        raise BenchError(f"BERT hidden size {hidden} is not divisible by its {heads} heads")
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_positions,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return BertModel(config, add_pooling_layer=False)


def _hint(key: str) -> str:
    return (
        f"pass --set {key}=/path/to/bert-base-uncased (a folder with config.json, "
        f"{' or '.join(_WEIGHT_FILES)} and the tokenizer files, as save_pretrained writes it), "
        "or use --preset quick (a small BERT from config, no pretrained weights)"
    )


def resolve_bert(
    name_or_path: str, key: str = "text.pretrained", cache_dir: Path | None = None
) -> Path:
    """The local folder of a pretrained BERT: a folder path as given, or a Hugging Face model id
    (``bert-base-uncased``) looked up in the local cache only (``cache_dir``, default
    ``HF_HUB_CACHE``). ``key`` is the config key named in the error when nothing is found
    (:class:`~bench.errors.WeightsNotFoundError`)."""
    value = str(name_or_path).strip()
    path = Path(value).expanduser()
    if path.is_dir():
        folder = path
    elif path.is_absolute() or value.startswith((".", "~")) or value.count("/") > 1:
        raise WeightsNotFoundError(f"BERT folder {path} does not exist; {_hint(key)}")
    else:
        from huggingface_hub import snapshot_download

        try:
            folder = Path(snapshot_download(value, local_files_only=True, cache_dir=cache_dir))
        except Exception as e:  # LocalEntryNotFoundError, a malformed id, an unreadable cache
            from huggingface_hub.constants import HF_HUB_CACHE

            raise WeightsNotFoundError(
                f"pretrained text encoder {value!r} not found in the Hugging Face cache "
                f"{cache_dir or HF_HUB_CACHE} (nothing is downloaded; {type(e).__name__}); "
                f"{_hint(key)}"
            ) from e
    missing = [] if (folder / "config.json").is_file() else ["config.json"]
    if not any((folder / f).is_file() for f in _WEIGHT_FILES):
        missing.append(" or ".join(_WEIGHT_FILES))
    if missing:
        raise WeightsNotFoundError(f"BERT folder {folder} lacks {', '.join(missing)}; {_hint(key)}")
    return folder


def load_pretrained_bert(folder: Path) -> tuple[BertModel, PreTrainedTokenizerFast]:
    """``BertModel`` (no pooler) and its tokenizer from a folder of :func:`resolve_bert`."""
    from transformers import AutoTokenizer, BertModel

    try:
        model = BertModel.from_pretrained(folder, add_pooling_layer=False, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as e:
        raise BenchError(f"cannot load BERT from {folder}: {type(e).__name__}: {e}") from e
    if not getattr(tokenizer, "is_fast", False):
        raise BenchError(f"the tokenizer in {folder} is not a fast tokenizer")
    return model, tokenizer


class TextEncoder(nn.Module):
    """Tokenizer + BERT: texts -> last hidden states, one feature per token (``[CLS]`` and
    ``[SEP]`` included), and a mask of the real tokens.

    ``pad_to_max`` pads every text to ``max_length`` tokens (DMCL's released code pads to 291 and
    lets the fusion attend to the padding); otherwise to the longest text of the call.
    """

    def __init__(
        self,
        bert: BertModel,
        tokenizer: PreTrainedTokenizerFast,
        max_length: int = 64,
        pad_to_max: bool = False,
    ) -> None:
        super().__init__()
        self.bert = bert
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.pad_to_max = pad_to_max

    @property
    def width(self) -> int:
        return int(self.bert.config.hidden_size)

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Each text's token count before truncation, ``[CLS]`` and ``[SEP]`` included: a text
        is cut by :meth:`tokenize` exactly when its count exceeds ``max_length``."""
        ids = self.tokenizer(list(texts), truncation=False, verbose=False)["input_ids"]
        return [len(x) for x in ids]

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(
            list(texts),
            padding="max_length" if self.pad_to_max else "longest",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )

    def forward(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, n, width)`` token features and a ``(B, n)`` bool mask, True on real tokens."""
        device = next(self.bert.parameters()).device
        batch = self.tokenize(texts)
        ids = batch["input_ids"].to(device)
        mask = batch["attention_mask"].to(device)
        out = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        return out, mask.bool()


def pad_sequences(
    seqs: Sequence[torch.Tensor], length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``(n_i, D)`` tensors into ``(B, n, D)`` zero-padded and a ``(B, n)`` bool mask."""
    if not seqs:
        raise ValueError("pad_sequences needs at least one sequence")
    n = max(s.size(0) for s in seqs) if length is None else length
    out = seqs[0].new_zeros(len(seqs), n, seqs[0].size(1))
    mask = torch.zeros(len(seqs), n, dtype=torch.bool, device=seqs[0].device)
    for i, s in enumerate(seqs):
        out[i, : s.size(0)] = s
        mask[i, : s.size(0)] = True
    return out, mask


class TextFeatureCache:
    """Token features of a frozen :class:`TextEncoder`, computed once per distinct text.

    ``lookup(texts)`` encodes the texts not seen before (in one batch, without gradient) and
    returns the padded ``(B, n, D)`` features and mask as :class:`TextEncoder` would. Only valid
    while the encoder's weights do not change (call :meth:`clear` if they do).
    """

    def __init__(self, encoder: TextEncoder, batch_size: int = 64) -> None:
        self.encoder = encoder
        self.batch_size = batch_size
        self._store: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        self._store.clear()

    @torch.no_grad()
    def _fill(self, texts: Sequence[str]) -> None:
        new = sorted({t for t in texts if t not in self._store})
        was_training = self.encoder.training
        self.encoder.eval()
        try:
            for i in range(0, len(new), self.batch_size):
                chunk = new[i : i + self.batch_size]
                feats, mask = self.encoder(chunk)
                for text, f, m in zip(chunk, feats, mask):
                    # keep the padding a padded-to-max encoder produced: it is part of the input
                    keep = f.size(0) if self.encoder.pad_to_max else int(m.sum())
                    self._store[text] = (f[:keep].float().clone(), m[:keep].clone())
        finally:
            self.encoder.train(was_training)

    def lookup(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        self._fill(texts)
        feats = [self._store[t][0] for t in texts]
        masks = [self._store[t][1] for t in texts]
        padded, present = pad_sequences(feats)
        mask = torch.zeros_like(present)
        for i, m in enumerate(masks):
            mask[i, : m.numel()] = m
        return padded, mask
