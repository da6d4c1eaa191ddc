import torch

from videorft.engine.rollout.types import Rollouts, completion_mask, decode_completions


def test_completion_mask_stops_after_first_eos():
    ids = torch.tensor([[5, 6, 9, 7, 9], [5, 5, 5, 5, 5], [9, 0, 0, 0, 0]])
    mask = completion_mask(ids, eos_token_id=9)
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert Rollouts(ids, mask, ["", "", ""], 3).lengths.tolist() == [3, 5, 1]


def test_decode_drops_masked_and_special_tokens(bpe_tokenizer):
    text = "<think>red</think><answer>A</answer>"
    body = bpe_tokenizer(text)["input_ids"]
    eos, pad = bpe_tokenizer.eos_token_id, bpe_tokenizer.pad_token_id
    ids = torch.tensor([body + [eos, pad, pad]])
    mask = completion_mask(ids, eos)
    assert decode_completions(bpe_tokenizer, ids, mask) == [text]
