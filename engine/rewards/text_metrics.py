"""Text similarity behind the OCR and free-form rewards: word error rate and mean ROUGE F-measure."""

from __future__ import annotations

import functools

from rapidfuzz.distance import Levenshtein


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word edits turning `reference` into `hypothesis`, over the reference word count (at least 1).

    Words are whitespace-separated and compared exactly (case and punctuation count), as in
    VideoRFT's OCR reward; substitutions, insertions and deletions cost 1 each (rapidfuzz's
    Levenshtein distance over the word lists). The rate can exceed 1 when the hypothesis is much
    longer.
    """
    ref_words, hyp_words = reference.split(), hypothesis.split()
    return Levenshtein.distance(ref_words, hyp_words) / max(1, len(ref_words))


@functools.lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def mean_rouge_f(reference: str, hypothesis: str) -> float:
    """Mean of the ROUGE-1, ROUGE-2 and ROUGE-L F-measures with Porter stemming (rouge-score).

    rouge-score's tokenizer lower-cases and keeps only ASCII letters and digits, so text in other
    scripts has no tokens and scores 0; the released reward has the same limit and the number is
    kept comparable with it.
    """
    scores = _rouge_scorer().score(reference, hypothesis)
    return (scores["rouge1"].fmeasure + scores["rouge2"].fmeasure + scores["rougeL"].fmeasure) / 3.0
