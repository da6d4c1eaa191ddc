"""A tiny SigLIP built offline: real `SiglipModel` classes at toy width, with its own tokenizer and
image processor, saved in the layout of a released SigLIP checkpoint.

The text side uses a byte-level BPE that lower-cases (like SigLIP's tokenizer), appends an
end-of-sequence token and is padded to 64 tokens; any Unicode text encodes. The image processor
is transformers' SiglipImageProcessorPil (the SigLIP processor that needs no torchvision), saved
under the generic SigLIP name so GPU nodes with torchvision load the torchvision variant.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast, SiglipConfig, SiglipModel
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

from videorft.engine.config import EncoderTrainConfig
from videorft.engine.models.tokenizer import default_corpus

PAD, EOS = "<pad>", "</s>"


def build_caption_tokenizer(texts: Iterable[str], vocab_size: int = 512,
                            max_length: int = 64) -> PreTrainedTokenizerBase:
    """A lower-casing byte-level BPE trained on the project corpus plus `texts`.

    ids: 0 = <pad>, 1 = </s>; every encoding ends with </s>; `model_max_length` = max_length;
    only input_ids are returned (SigLIP's text tower runs without an attention mask).
    """
    core = Tokenizer(models.BPE())
    core.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(list(default_corpus()) + list(texts), trainer=trainer)
    core.post_processor = processors.TemplateProcessing(single=f"$A {EOS}",
                                                        special_tokens=[(EOS, core.token_to_id(EOS))])
    return PreTrainedTokenizerFast(tokenizer_object=core, model_max_length=max_length, pad_token=PAD,
                                   eos_token=EOS, model_input_names=["input_ids"])


def tiny_siglip_config(cfg: EncoderTrainConfig, vocab_size: int) -> SiglipConfig:
    """SiglipConfig with both towers at `cfg`'s width; the text head projects to the vision width."""
    if cfg.image_size % cfg.patch_size:
        raise ValueError(f"encoder.image_size {cfg.image_size} is not a multiple of encoder.patch_size "
                         f"{cfg.patch_size}")
    tower = dict(hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
                 num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads)
    text = dict(tower, vocab_size=vocab_size, max_position_embeddings=cfg.max_text_tokens,
                projection_size=cfg.hidden_size, pad_token_id=0, bos_token_id=None, eos_token_id=1)
    vision = dict(tower, image_size=cfg.image_size, patch_size=cfg.patch_size)
    return SiglipConfig(text_config=text, vision_config=vision)


def build_tiny_siglip(cfg: EncoderTrainConfig, vocab_size: int, seed: int = 0) -> SiglipModel:
    """A randomly initialised SiglipModel with SigLIP's starting logit scale 10.

    The logit bias starts at -log(batch_size), the log-odds of a pair being positive when each
    text has one match in the batch. SigLIP's -10 suits batches of thousands; with 64 pairs it
    keeps the tiny model stuck predicting "no match" for most of a short run.
    """
    torch.manual_seed(seed)
    model = SiglipModel(tiny_siglip_config(cfg, vocab_size))
    with torch.no_grad():
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(-math.log(max(2, cfg.batch_size)))
    return model


def build_image_processor(image_size: int) -> SiglipImageProcessorPil:
    """SigLIP preprocessing (bicubic resize to image_size, scale to [0, 1], mean/std 0.5)."""
    return SiglipImageProcessorPil(size={"height": image_size, "width": image_size})


def save_encoder(path: str | Path, model: SiglipModel, tokenizer: PreTrainedTokenizerBase,
                 image_processor: SiglipImageProcessorPil) -> Path:
    """Write model (safetensors), tokenizer and image processor config to `path`."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    image_processor.save_pretrained(path)
    return path


def write_untrained_encoder(path: str | Path, cfg: EncoderTrainConfig | None = None,
                            texts: Iterable[str] = (), seed: int = 0) -> Path:
    """Save a randomly initialised tiny SigLIP (tokenizer trained on the corpus plus `texts`).

    For tests and benchmarks whose result does not depend on what the encoder has learned
    (loading, shapes, pooling arithmetic, timing).
    """
    cfg = cfg or EncoderTrainConfig()
    tokenizer = build_caption_tokenizer(texts, cfg.vocab_size, cfg.max_text_tokens)
    model = build_tiny_siglip(cfg, len(tokenizer), seed=seed)
    return save_encoder(path, model, tokenizer, build_image_processor(cfg.image_size))
