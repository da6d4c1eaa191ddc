"""Sentence splitting for the semantic reward's text span.

VideoRFT embeds the reasoning after its first sentence (the first sentence usually restates the
question; what follows describes the video). The released code cut at the first '.', which
breaks on "3.5", "e.g." and "etc.". Here a sentence ends at '.', '!' or '?' (with any closing
quotes or brackets) followed by whitespace or the end of the text, or at a line break, or at a
CJK full stop; a '.' does not end a sentence after a known abbreviation or when the next word
starts in lower case. Decimals never split because no whitespace follows their point.
"""

from __future__ import annotations

import re
from typing import Iterator

from videorft.engine.rewards.answers import think_text

ABBREVIATIONS = frozenset({
    "e.g", "i.e", "etc", "vs", "cf", "viz", "approx", "ca", "resp", "al", "fig", "figs", "eq", "no",
    "nos", "vol", "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "inc", "ltd", "co", "corp",
    "dept", "u.s", "u.k", "a.m", "p.m", "ph.d", "op",
})
"""Words (lower case, without their final '.') after which a period does not end a sentence."""

_CANDIDATE = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s|$)|[\u3002\uff01\uff1f]+|\n+")
_CLOSERS = "\"'\u201d\u2019)]"


def _ends_sentence(text: str, match: re.Match) -> bool:
    mark = match.group(0)
    if mark.startswith("\n") or mark[0] in "!?\u3002\uff01\uff1f":
        return True
    if set(mark.rstrip(_CLOSERS)) != {"."}:
        return True  # mixed marks such as "?!" or "..." followed by "?"
    before = text[max(0, match.start() - 32):match.start()].split()
    if before and before[-1].lstrip("(\"'[").lower() in ABBREVIATIONS:
        return False
    following = text[match.end():match.end() + 8].lstrip()
    return not (following and following[0].islower())


def _boundaries(text: str) -> Iterator[tuple[int, int]]:
    """(end of a sentence, start of the text after it) for every sentence boundary, in order."""
    for match in _CANDIDATE.finditer(text):
        if _ends_sentence(text, match):
            yield (match.start() if match.group(0).startswith("\n") else match.end()), match.end()


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of `text`, surrounding whitespace excluded."""
    spans, start = [], 0
    for end, after in _boundaries(text):
        _append_span(text, start, end, spans)
        start = after
    _append_span(text, start, len(text), spans)
    return spans


def _append_span(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    piece = text[start:end]
    if piece.strip():
        lead = len(piece) - len(piece.lstrip())
        spans.append((start + lead, start + len(piece.rstrip())))


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, stripped, in order (see the module doc for the rules)."""
    return [text[a:b] for a, b in sentence_spans(text)]


def reasoning_span(completion: str) -> str:
    """The text the semantic reward embeds: the reasoning after its first sentence.

    The reasoning is the first <think> block, or the whole completion when it has none (as in
    the released code). When the reasoning is a single sentence it is kept whole, rather than
    embedding an empty string as the released code did. Only the first boundary is searched.
    """
    think = think_text(completion)
    reasoning = completion if think is None else think
    start = 0
    for end, after in _boundaries(reasoning):
        if reasoning[start:end].strip():
            rest = reasoning[after:].strip()
            return rest if rest else reasoning.strip()
        start = after
    return reasoning.strip()
