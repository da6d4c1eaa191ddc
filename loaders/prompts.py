"""Turn a record into the chat prompt VideoRFT models expect, and the SFT target after it.

The strings come from loaders/data/prompts.yaml (VideoRFT's own templates). The user turn is
[vision item, question text], with the question text = question template filled with the
problem (options appended exactly once) + the answer-type template. The chat template of the
tokenizer then writes the ChatML text, including one vision placeholder block that
loaders/qwen_inputs.py later expands to the clip's token count.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, Sequence

import yaml

from videorft.loaders.records import Record
from videorft.loaders.schema import PROBLEM_TYPES

OptionsMode = Literal["auto", "append", "never"]
SystemPrompt = Literal["default", "r1", "none"]
TemplateName = Literal["train", "eval"]

_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])[.):]\s+\S", re.MULTILINE)


@dataclass(frozen=True)
class PromptTemplates:
    """The prompt strings of loaders/data/prompts.yaml."""

    question: dict[str, str]
    """Question templates by name ("train", "eval"), each with a {Question} slot."""
    types: dict[str, str]
    """Answer-type templates by problem type."""
    system: dict[str, str]
    """System prompts by name ("r1")."""
    options: dict[str, str]
    """Option layouts by template name, each with an {options} slot."""


@functools.lru_cache(maxsize=1)
def load_templates() -> PromptTemplates:
    """Read loaders/data/prompts.yaml (once per process) and check it covers every problem type."""
    text = resources.files("videorft.loaders").joinpath("data", "prompts.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    templates = PromptTemplates(question=data["question_templates"], types=data["type_templates"],
                                system=data["system_prompts"], options=data["options_layouts"])
    missing = set(PROBLEM_TYPES) - set(templates.types)
    if missing:
        raise ValueError(f"loaders/data/prompts.yaml: type_templates lacks {sorted(missing)}")
    return templates


def options_in_problem(problem: str, options: Sequence[str]) -> bool:
    """Whether the problem text already lists its options.

    True when every option line occurs in the problem verbatim, or when the problem has option
    lines of its own ("A. ...", "(B) ...") for at least the first two letters.
    """
    if options and all(opt.strip() and opt.strip() in problem for opt in options):
        return True
    letters = {m.group(1) for m in _OPTION_LINE.finditer(problem)}
    return {"A", "B"} <= letters


def problem_with_options(record: Record, options: OptionsMode = "auto", template: TemplateName = "train") -> str:
    """The problem text with the options appended exactly once (per DataConfig.options)."""
    if options not in ("auto", "append", "never"):
        raise ValueError(f"data.options must be 'auto', 'append' or 'never', got {options!r}")
    problem = record.problem
    if not record.options or options == "never":
        return problem
    if options == "auto" and options_in_problem(problem, record.options):
        return problem
    block = load_templates().options[template].format(options="\n".join(o.strip() for o in record.options))
    separator = "" if problem.endswith("\n") else "\n"
    return problem + separator + block


def question_text(record: Record, options: OptionsMode = "auto", template: TemplateName = "train") -> str:
    """The user's text: question template with the problem, then the answer-type template."""
    t = load_templates()
    if template not in t.question:
        raise ValueError(f"data.template must be one of {sorted(t.question)}, got {template!r}")
    return t.question[template].format(Question=problem_with_options(record, options, template)) + \
        t.types[record.problem_type]


def build_messages(record: Record, system_prompt: SystemPrompt = "default", options: OptionsMode = "auto",
                   template: TemplateName = "train") -> list[dict[str, Any]]:
    """Chat messages: [system?], user [vision item, question text]. The vision item comes first."""
    messages: list[dict[str, Any]] = []
    if system_prompt == "r1":
        messages.append({"role": "system", "content": load_templates().system["r1"]})
    elif system_prompt not in ("default", "none"):
        raise ValueError(f"data.system_prompt must be 'default', 'r1' or 'none', got {system_prompt!r}")
    messages.append({"role": "user", "content": [
        {"type": record.data_type},
        {"type": "text", "text": question_text(record, options, template)},
    ]})
    return messages


def render_prompt(tokenizer, messages: list[dict[str, Any]], system_prompt: SystemPrompt = "default") -> str:
    """ChatML prompt text ending with the assistant header, via the tokenizer's chat template.

    system_prompt "none" drops the system turn that templates such as Qwen's insert when the
    conversation has none.
    """
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if system_prompt == "none":
        inserted = inserted_system_turn(tokenizer)
        if inserted and text.startswith(inserted):
            text = text[len(inserted):]
    return text


def inserted_system_turn(tokenizer) -> str:
    """The text a chat template puts first when a conversation has no system message ("" if none)."""
    def render(messages: list[dict[str, str]]) -> str:
        return tokenizer.apply_chat_template(messages, tokenize=False)

    sys_only = render([{"role": "system", "content": "\x01"}])
    with_sys = render([{"role": "system", "content": "\x01"}, {"role": "user", "content": "\x00"}])
    user_only = render([{"role": "user", "content": "\x00"}])
    if not with_sys.startswith(sys_only):
        raise ValueError("the chat template does not write turns one after another; system_prompt 'none' "
                         "is not supported with it")
    user_turn = with_sys[len(sys_only):]
    return user_only[:len(user_only) - len(user_turn)] if user_only.endswith(user_turn) else ""


def response_text(record: Record) -> str:
    """The SFT target: reasoning, a line break, then the answer, as VideoRFT's SFT builds it."""
    if not record.process:
        raise ValueError(f"{record.origin or record.problem_id}: process: SFT needs reference reasoning")
    return f"{record.process}\n{record.solution}"
