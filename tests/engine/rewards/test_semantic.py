"""SigLIP semantic reward: pixel inputs, pooling modes, text span and truncation, device paths."""

import math

import numpy as np
import pytest
import torch
from transformers import AutoImageProcessor

from videorft.engine.encoder.shapes import shape_pairs
from videorft.engine.rewards import SemanticScorer, reasoning_span
from videorft.engine.rewards.frame_transform import FrameTransform
from videorft.engine.rewards.semantic import head_words, sample_frame_indices
from videorft.loaders.clip import VideoClip

ONE_LEVEL = 1 / 127.5  # one uint8 step after SigLIP's (x / 255 - 0.5) / 0.5


def make_clip(frames: np.ndarray) -> VideoClip:
    n = len(frames)
    return VideoClip(frames=torch.from_numpy(frames), indices=list(range(n)),
                     timestamps=[i / 8 for i in range(n)], fps=8.0, total_frames=n)


def test_torch_pixels_match_the_siglip_processor(untrained_encoder):
    frames, _ = shape_pairs(6, size=224, seed=4)
    processor = AutoImageProcessor.from_pretrained(untrained_encoder)
    reference = processor(images=list(frames), return_tensors="pt")["pixel_values"]
    ours = FrameTransform.from_image_processor(processor)(torch.from_numpy(frames))
    assert ours.shape == reference.shape == (6, 3, processor.size["height"], processor.size["width"])
    assert (ours - reference).abs().max() <= ONE_LEVEL + 1e-6
    transform = FrameTransform.from_image_processor(processor)
    float_path = transform(torch.from_numpy(frames), uint8_resize=False)  # the CUDA path, run on CPU
    assert (float_path - reference).abs().max() <= ONE_LEVEL + 1e-6


def test_frame_transform_rejects_float_frames_and_unsupported_processors(untrained_encoder):
    transform = FrameTransform.from_image_processor(AutoImageProcessor.from_pretrained(untrained_encoder))
    with pytest.raises(ValueError, match="uint8"):
        transform(torch.rand(2, 8, 8, 3) * 255)  # float frames in 0..255: the released code's mistake

    class CropProcessor:
        size = {"shortest_edge": 224}

    with pytest.raises(ValueError, match="height/width"):
        FrameTransform.from_image_processor(CropProcessor())


@pytest.mark.parametrize("total,num,expected", [
    (40, 16, [0, 3, 5, 8, 10, 13, 16, 18, 21, 23, 26, 29, 31, 34, 36, 39]),
    (5, 16, [0, 1, 2, 3, 4]),
    (16, 16, list(range(16))),
    (9, 4, [0, 3, 5, 8]),
])
def test_sample_frame_indices(total, num, expected):
    assert sample_frame_indices(total, num).tolist() == expected


@pytest.mark.parametrize("frame_emb,text_emb,mean_reward,per_frame_reward", [
    # two orthogonal frames; the text matches frame 0 exactly
    ([[1, 0], [0, 1]], [[1, 0]], 1.0, 0.5),            # mean: cos 0.707 * 2 -> capped 1; per frame (1 + 0) / 2
    # text opposite to both frames: clipped to 0 either way
    ([[1, 0], [0, 1]], [[-0.6, -0.8]], 0.0, 0.0),
    # small cosines stay below the cap: cos 0.2 -> 0.4
    ([[1, 0], [1, 0]], [[0.2, math.sqrt(1 - 0.04)]], 0.4, 0.4),
    # one frame agrees, one disagrees: per-frame clips the negative frame before averaging
    ([[1, 0], [-1, 0]], [[0.3, math.sqrt(1 - 0.09)]], 0.0, 0.3),
])
def test_pooling_arithmetic(untrained_encoder, frame_emb, text_emb, mean_reward, per_frame_reward):
    scorer = SemanticScorer(untrained_encoder, weight=2.0)
    frames = torch.nn.functional.normalize(torch.tensor(frame_emb, dtype=torch.float32), dim=-1)
    text = torch.tensor(text_emb, dtype=torch.float32)
    mean_video = frames.mean(0)  # what "mean-embedding" pooling keeps
    assert scorer.rewards_from_embeddings(text, mean_video).item() == pytest.approx(mean_reward, abs=1e-6)
    assert scorer.rewards_from_embeddings(text, frames).item() == pytest.approx(per_frame_reward, abs=1e-6)


@pytest.mark.parametrize("pooling", ["mean-embedding", "per-frame"])
def test_scores_match_a_direct_siglip_computation(untrained_encoder, pooling):
    frames, _ = shape_pairs(20, size=48, seed=5)
    texts = ["a red circle on the left", "a blue square", "nothing at all " * 30]
    scorer = SemanticScorer(untrained_encoder, pooling=pooling, weight=3.0, num_frames=16)
    video = scorer.embed_video(make_clip(frames))
    assert video.shape == ((64,) if pooling == "mean-embedding" else (16, 64))

    model, tok = scorer.model, scorer.tokenizer
    picked = torch.from_numpy(frames[sample_frame_indices(20, 16).numpy()])
    with torch.no_grad():
        img = model.get_image_features(pixel_values=scorer.transform(picked)).pooler_output
        ids = tok(texts, padding="max_length", truncation=True, max_length=64, return_tensors="pt")["input_ids"]
        txt = model.get_text_features(input_ids=ids).pooler_output
    cos = torch.nn.functional.cosine_similarity(txt[:, None, :], img[None, :, :], dim=-1)  # [3, 16]
    if pooling == "per-frame":
        expected = (3.0 * cos).clamp(0, 1).mean(-1)
    else:
        mean = torch.nn.functional.normalize(img, dim=-1).mean(0)
        expected = (3.0 * torch.nn.functional.cosine_similarity(txt, mean[None], dim=-1)).clamp(0, 1)
    got = torch.tensor(scorer.score(texts, video))
    assert torch.allclose(got, expected, atol=1e-5)


def test_text_is_cut_to_the_encoder_limit(untrained_encoder):
    scorer = SemanticScorer(untrained_encoder)
    long = "the red circle moves to the left and then to the right " * 10  # far beyond 64 tokens
    emb = scorer.embed_texts([long, long + " a blue square appears", "the red circle"])
    assert scorer.max_text_tokens == 64
    assert torch.allclose(emb[0], emb[1], atol=1e-6)
    assert not torch.allclose(emb[0], emb[2], atol=1e-3)


@pytest.mark.parametrize("text", [
    "the red circle moves, e.g. 3.5 cm per second;\n then it stops. " * 20,
    "ünïcödé 红色的球 moves   left\t\tand right " * 20,
    "short text",
])
def test_head_words_keep_the_first_tokens(untrained_encoder, text):
    tok = SemanticScorer(untrained_encoder).tokenizer
    full = tok(text, truncation=True, max_length=64)["input_ids"]
    head = tok(head_words(text, 65), truncation=True, max_length=64)["input_ids"]
    assert head == full and len(head_words(text, 65).split()) <= 65


def test_completions_are_scored_on_their_reasoning_span(untrained_encoder):
    scorer = SemanticScorer(untrained_encoder, pooling="per-frame")
    video = scorer.embed_video(make_clip(shape_pairs(4, size=32, seed=2)[0]))
    completions = ["<think>The question asks about colour. A red circle on the left.</think><answer>A</answer>",
                   "no tags here. just text"]
    expected = scorer.score([reasoning_span(c) for c in completions], video)
    assert scorer.score_completions(completions, video) == expected
    assert reasoning_span(completions[0]) == "A red circle on the left."
    assert scorer.score([], video) == []


def test_trained_encoder_rewards_the_right_description(trained_encoder):
    """On a clip of one scene class the matching description earns more reward than others."""
    frames, captions = trained_encoder.held_out
    wins, total = 0, 0
    for target in sorted(set(captions))[:6]:
        clip_frames = frames[[i for i, c in enumerate(captions) if c == target][:8]]
        others = sorted({c for c in captions if c != target})
        for pooling in ("mean-embedding", "per-frame"):
            scorer = SemanticScorer(trained_encoder.path, pooling=pooling)
            rewards = scorer.score([target] + others, scorer.embed_video(make_clip(clip_frames)))
            wins += sum(rewards[0] > r for r in rewards[1:])
            total += len(others)
    assert wins / total >= 0.9, wins / total


def test_bad_settings_name_the_field(untrained_encoder):
    with pytest.raises(ValueError, match="rewards.semantic.weight"):
        SemanticScorer(untrained_encoder, weight=0)
    with pytest.raises(ValueError, match="rewards.semantic.pooling"):
        SemanticScorer(untrained_encoder, pooling="max")
    with pytest.raises(ValueError, match="rewards.semantic.num_frames"):
        SemanticScorer(untrained_encoder, num_frames=0)
    with pytest.raises(ValueError, match="without frames"):
        SemanticScorer(untrained_encoder).embed_video(torch.zeros(0, 8, 8, 3, dtype=torch.uint8))


@pytest.mark.gpu
def test_cuda_bf16_scores_match_cpu(untrained_encoder):
    frames, captions = shape_pairs(16, size=224, seed=7)
    cpu = SemanticScorer(untrained_encoder, pooling="per-frame", weight=20.0)
    gpu = SemanticScorer(untrained_encoder, device="cuda", dtype=torch.bfloat16, pooling="per-frame", weight=20.0)
    cpu_video = cpu.embed_video(torch.from_numpy(frames))
    gpu_video = gpu.embed_video(torch.from_numpy(frames).cuda())  # frames decoded on the GPU stay there
    assert gpu_video.device.type == "cuda"
    assert torch.allclose(gpu_video.cpu(), cpu_video, atol=5e-2)
    got, want = gpu.score(captions, gpu_video), cpu.score(captions, cpu_video)
    assert np.allclose(got, want, atol=0.1)


def test_checkpoint_with_the_real_siglip_tokenizer_class(tmp_path):
    """Released SigLIP checkpoints ship a SentencePiece SiglipTokenizer (lower-casing, </s>, 64 tokens)."""
    import io

    spm = pytest.importorskip("sentencepiece")
    from transformers import SiglipTokenizer

    from videorft.engine.config import EncoderTrainConfig
    from videorft.engine.encoder.tiny_siglip import build_image_processor, build_tiny_siglip, save_encoder
    from videorft.engine.models.tokenizer import default_corpus

    model_file = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(default_corpus()), model_writer=model_file,
                                   vocab_size=200, pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2)
    (tmp_path / "spiece.model").write_bytes(model_file.getvalue())
    tokenizer = SiglipTokenizer(vocab_file=str(tmp_path / "spiece.model"), model_max_length=64)
    cfg = EncoderTrainConfig()
    save_encoder(tmp_path / "ckpt", build_tiny_siglip(cfg, vocab_size=200), tokenizer,
                 build_image_processor(cfg.image_size))

    scorer = SemanticScorer(str(tmp_path / "ckpt"))
    assert type(scorer.tokenizer).__name__ == "SiglipTokenizer" and scorer.max_text_tokens == 64
    emb = scorer.embed_texts(["The Red Circle moves.", "the red circle moves.", "a blue square"])
    assert torch.allclose(emb[0], emb[1]) and not torch.allclose(emb[0], emb[2], atol=1e-3)
    video = scorer.embed_video(torch.from_numpy(shape_pairs(3, size=40, seed=0)[0]))
    assert len(scorer.score(["a red circle"], video)) == 1
