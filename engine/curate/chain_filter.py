"""Stage (d): which chains of thought become SFT data, and why the others do not.

Checks, in order (the first that fails names the drop): the earlier stages produced a chain
(`no_representation`, `no_chain`, `no_revision`); it is well-formed (`format`: exactly one think and
one answer block, as the format reward wants); its reasoning has between min_words and max_words words
(`too_short`, `too_long`); it does not betray a text source (`leak`); its answer is right under the
one rewards module (`wrong_answer`: score 1 for multiple choice and numerical, at least min_score for
OCR and regression), or for free-form answers close enough in meaning to the reference through the
configured text encoder (`low_similarity`). Repeated questions were dropped on reading the pool
(`duplicate`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Optional

from videorft.engine.config import CurateFilterConfig
from videorft.engine.config_loader import ConfigError
from videorft.engine.curate.pool import Sample
from videorft.engine.rewards import accuracy_reward, format_reward
from videorft.engine.rewards.answers import solution_answer

EXACT_TYPES = ("multiple choice", "numerical")


class AnswerSimilarity:
    """Cosine between free-form answers and references through a SigLIP text tower."""

    def __init__(self, encoder_path: str):
        from videorft.engine.rewards import SemanticScorer

        self.scorer = SemanticScorer(encoder_path)

    def __call__(self, answer: str, reference: str) -> float:
        emb = self.scorer.embed_texts([answer, reference])          # [2, D], unit rows
        return float(emb[0] @ emb[1])


def upstream_problem(sample: Sample, rows: dict[str, dict], stages: list[str]) -> Optional[str]:
    """The drop reason when an earlier stage left no usable output."""
    for stage, reason in (("represent", "no_representation"), ("reason", "no_chain"), ("revise", "no_revision")):
        if stage in stages:
            row = rows[stage].get(sample.id)
            if row is None or row["status"] != "ok":
                return reason
    return None


def judge(sample: Sample, think: str, answer: str, cfg: CurateFilterConfig,
          similarity: Optional[AnswerSimilarity]) -> tuple[Optional[str], float]:
    """(drop reason or None, answer score) of one finished chain."""
    completion = f"<think>{think}</think> <answer>{answer}</answer>"
    if format_reward(completion) != 1.0:
        return "format", 0.0
    words = len(think.split())
    if words < cfg.min_words:
        return "too_short", 0.0
    if words > cfg.max_words:
        return "too_long", 0.0
    lowered = think.lower()
    if any(p.lower() in lowered for p in cfg.leak_phrases):
        return "leak", 0.0
    kind = sample.record.problem_type
    if kind == "free-form":
        if similarity is None:
            raise ConfigError("curate.filter.encoder_path: the pool has free-form questions; name a SigLIP checkpoint")
        score = similarity(answer, solution_answer(sample.record.solution))
        return (None if score >= cfg.semantic_threshold else "low_similarity"), score
    score = accuracy_reward(completion, sample.record.solution, kind)
    needed = 1.0 if kind in EXACT_TYPES else cfg.min_score
    return (None if score >= needed else "wrong_answer"), score


def run_filter(samples: list[Sample], rows: dict[str, dict], stages: list[str], cfg: CurateFilterConfig,
               duplicates: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(filter rows, SFT records, counts) over the pool; the chain is the revised one when revise ran."""
    similarity = None
    if cfg.encoder_path and any(s.record.problem_type == "free-form" for s in samples):
        similarity = AnswerSimilarity(cfg.encoder_path)
    out_rows, records, dropped = [], [], Counter()
    for sample in samples:
        reason, score = upstream_problem(sample, rows, stages), 0.0
        if reason is None:
            chain = rows["reason"][sample.id]
            think = rows["revise"][sample.id]["think"] if "revise" in stages else chain["think"]
            reason, score = judge(sample, think, chain["answer"], cfg, similarity)
        out_rows.append({"id": sample.id, "problem_id": sample.record.problem_id, "kept": reason is None,
                         "reason": reason, "score": round(score, 4)})
        if reason is None:
            record = sample.record.to_dict()
            record["process"] = f"<think>{think}</think>"
            records.append(record)
        else:
            dropped[reason] += 1
    if duplicates:
        dropped["duplicate"] += duplicates
    counts = {"total": len(samples) + duplicates, "kept": len(records), "dropped": dict(sorted(dropped.items()))}
    return out_rows, records, counts
