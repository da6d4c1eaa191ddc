"""`videorft eval`: answer a benchmark's records with a checkpoint and score them.

Decoding is near-greedy (VideoRFT evaluates with temperature 0.1 and top_p 0.001, which is greedy
in effect, so the HF backend decodes greedily). Scores come from the one rewards module with the
evaluation rules: whole-output fallback when there is no <answer> block, MRA for regression,
exact option letters unless eval.lenient_choice. Predictions are appended to predictions.jsonl as
they are made, so an interrupted evaluation resumes without redoing finished records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from videorft.engine.backends import resolve_backends
from videorft.engine.config import RunConfig
from videorft.engine.eval.aggregate import accuracy_by, aggregate
from videorft.engine.models.loading import load_model_and_tokenizer
from videorft.engine.rewards import SemanticScorer, accuracy_reward, eval_rules, format_reward, reasoning_span
from videorft.engine.rollout import build_rollout
from videorft.engine.run_dir import RunDir, log
from videorft.loaders.build import build_dataset, read_split
from videorft.loaders.dataloader import build_loader

PREDICTIONS = "predictions.jsonl"


def _done_ids(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    return {json.loads(line)["problem_id"] for line in path.read_text().splitlines() if line.strip()}


def _semantic(cfg: RunConfig, device: torch.device) -> SemanticScorer | None:
    s = cfg.rewards.semantic
    if not s.encoder_path:
        return None
    return SemanticScorer(s.encoder_path, device=device, weight=s.weight, pooling=s.pooling, num_frames=s.num_frames)


def _score(completion: str, record, rules, semantic: SemanticScorer | None, clip) -> dict[str, Any]:
    row = {"problem_id": str(record.problem_id), "problem_type": record.problem_type,
           "data_source": record.data_source, "completion": completion, "solution": record.solution,
           "accuracy": accuracy_reward(completion, record.solution, record.problem_type, rules),
           "format": format_reward(completion)}
    if semantic is not None:
        row["semantic"] = semantic.score([reasoning_span(completion)], semantic.embed_video(clip))[0]
    return row


def run(cfg: RunConfig) -> dict[str, Any]:
    """Evaluate model.path (or the tiny model) on data.eval_file; writes eval.json and predictions."""
    run_dir = RunDir(cfg, "eval")
    backends = resolve_backends(cfg)
    run_dir.record_backends(backends)
    device = torch.device(backends["device"])
    torch.manual_seed(cfg.run.seed)
    model, tokenizer = load_model_and_tokenizer(cfg.model, device, backends["attention"], seed=cfg.run.seed)
    records = read_split(cfg, "eval")
    out_path = run_dir.path / PREDICTIONS
    done = _done_ids(out_path)
    todo = [r for r in records.records if str(r.problem_id) not in done]
    log.info("evaluating %d records (%d already done)", len(todo), len(done))
    dataset = build_dataset(cfg, tokenizer, type(records)(records=todo, skipped=records.skipped), mode="prompt",
                            model_config=model.config)
    stream = build_loader(dataset, cfg.eval.batch_size, "prompt", num_workers=cfg.data.num_workers,
                          prefetch=cfg.data.prefetch)
    rollout = build_rollout(backends["rollout"], model, tokenizer, cfg.rollout, model_path=cfg.model.path,
                            dtype=cfg.model.dtype, seed=cfg.run.seed)
    rules, semantic = eval_rules(cfg.eval.lenient_choice), _semantic(cfg, device)
    with open(out_path, "a", encoding="utf-8") as sink:
        for batch in run_dir.progress(stream, total=len(stream), desc="eval"):
            out = rollout.generate(batch, group_size=1, greedy=True, max_new_tokens=cfg.eval.max_new_tokens)
            for text, record, clip in zip(out.texts, batch.records, batch.clips):
                sink.write(json.dumps(_score(text, record, rules, semantic, clip)) + "\n")
            sink.flush()
    rows = [json.loads(line) for line in out_path.read_text().splitlines() if line.strip()]
    metrics = aggregate(rows)
    summary = {"metrics": metrics, "by_source": accuracy_by(rows, "data_source"), "count": len(rows),
               "skipped_media": stream.skipped, "skipped_records": len(records.skipped),
               "model": cfg.model.path or "tiny"}
    (run_dir.path / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("eval: %s", {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)})
    run_dir.close()
    return summary
