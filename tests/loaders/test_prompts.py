"""Prompts: VideoRFT's template strings, options exactly once, system prompts, chat layout, SFT target."""

import pytest
import yaml

from videorft.loaders.prompts import (build_messages, inserted_system_turn, load_templates, options_in_problem,
                                      problem_with_options, question_text, render_prompt, response_text)
from videorft.loaders.records import Record
from videorft.loaders.schema import PROBLEM_TYPES

OPTIONS = ["A. red", "B. blue", "C. green"]


def _rec(problem="What colour is the large shape?", options=OPTIONS, kind="multiple choice", data_type="video"):
    return Record(problem_id=1, problem=problem, problem_type=kind, data_type=data_type, path="./v.mp4",
                  solution="<answer>B</answer>", options=list(options), process="<think>It is blue.</think>")


def test_templates_are_videorft_strings():
    t = load_templates()
    assert set(t.types) == set(PROBLEM_TYPES)
    assert t.question["train"].startswith("{Question}\nPlease think about this question as if you were a human")
    assert t.question["train"].endswith("between the <answer> </answer> tags.")
    assert t.question["eval"].endswith("between the <answer> and </answer> tags.")
    assert all(v.startswith(" Please") for v in t.types.values())
    assert t.system["r1"].startswith("A conversation between User and Assistant.")


@pytest.mark.parametrize("mode, template, expected", [
    ("append", "train", "What colour is the large shape?\nOptions:\nA. red\nB. blue\nC. green"),
    ("auto", "train", "What colour is the large shape?\nOptions:\nA. red\nB. blue\nC. green"),
    ("auto", "eval", "What colour is the large shape?\nA. red\nB. blue\nC. green\n"),
    ("never", "train", "What colour is the large shape?"),
])
def test_options_modes(mode, template, expected):
    assert problem_with_options(_rec(), mode, template) == expected


@pytest.mark.parametrize("problem", [
    "What colour is it?\nOptions:\nA. red\nB. blue\nC. green",          # the record's own lines
    "What colour is it?\n(A) red\n(B) blue\n(C) green",                  # other lettering
    "What colour is it? Options:\nA. crimson\nB. navy\n",               # different wording
])
def test_auto_never_appends_options_twice(problem):
    record = _rec(problem=problem)
    assert options_in_problem(problem, OPTIONS)
    text = question_text(record, "auto")
    assert text.count("red") <= 1 and text.count("B.") + text.count("(B)") == 1
    assert question_text(record, "append").count("blue") == 1 + problem.count("blue")


def test_options_not_detected_in_plain_problem():
    assert not options_in_problem("Is A. the answer here?", OPTIONS)
    assert not options_in_problem("What colour is the large shape?", OPTIONS)


def test_eval_prompt_is_eval_bench_text():
    """eval_bench.py: problem + "\\n" + each option + "\\n", then the template's "\\n": a blank line."""
    t = load_templates()
    text = question_text(_rec(), "auto", "eval")
    released = "What colour is the large shape?" + "\n" + "".join(op + "\n" for op in OPTIONS)
    assert text == t.question["eval"].format(Question=released) + t.types["multiple choice"]
    assert "C. green\n\nPlease think about this question" in text


def test_question_text_layout():
    text = question_text(_rec(kind="numerical", options=[]), "auto")
    t = load_templates()
    assert text == t.question["train"].format(Question="What colour is the large shape?") + t.types["numerical"]


def test_messages_put_the_vision_item_first():
    messages = build_messages(_rec(), "default")
    assert [m["role"] for m in messages] == ["user"]
    assert messages[0]["content"][0] == {"type": "video"} and messages[0]["content"][1]["type"] == "text"
    assert build_messages(_rec(data_type="image"), "r1")[1]["content"][0] == {"type": "image"}
    with pytest.raises(ValueError, match="system_prompt"):
        build_messages(_rec(), "chatty")


def test_system_prompt_variants(bpe_tokenizer):
    record = _rec()
    default = render_prompt(bpe_tokenizer, build_messages(record, "default"), "default")
    r1 = render_prompt(bpe_tokenizer, build_messages(record, "r1"), "r1")
    none = render_prompt(bpe_tokenizer, build_messages(record, "none"), "none")
    assert default.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert r1.startswith("<|im_start|>system\n" + load_templates().system["r1"] + "<|im_end|>\n")
    assert none.startswith("<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>What colour")
    assert inserted_system_turn(bpe_tokenizer) + none == default
    for text in (default, r1, none):
        assert text.endswith("<|im_end|>\n<|im_start|>assistant\n") and text.count("<|video_pad|>") == 1


def test_sft_target_continues_the_chat_template(bpe_tokenizer):
    """prompt + target + end of turn is exactly what the template writes for the full conversation."""
    record = _rec()
    messages = build_messages(record, "r1")
    prompt = render_prompt(bpe_tokenizer, messages, "r1")
    target = response_text(record)
    assert target == "<think>It is blue.</think>\n<answer>B</answer>"
    full = bpe_tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": target}], tokenize=False)
    assert full == prompt + target + bpe_tokenizer.eos_token + "\n"


def test_prompts_yaml_parses_as_plain_data():
    from importlib import resources

    text = resources.files("videorft.loaders").joinpath("data", "prompts.yaml").read_text()
    assert set(yaml.safe_load(text)) == {"question_templates", "type_templates", "system_prompts", "options_layouts"}
