"""The stages the CLI can run, each `run(cfg: RunConfig) -> dict` in its own module.

Modules are imported only when their stage runs, so `videorft --help` and config validation
stay fast and GPU-only packages are never touched by stages that do not need them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Stage:
    """A CLI command that runs one stage of the pipeline from a RunConfig."""

    target: str
    """"module:function" of the stage entry point."""
    help: str
    """One line for `videorft --help`."""

    def load(self) -> Callable[..., dict[str, Any]]:
        """Import and return the entry point."""
        module, _, func = self.target.partition(":")
        return getattr(importlib.import_module(module), func)


STAGES: dict[str, Stage] = {
    "init-model": Stage("videorft.engine.models.init_stage:run",
                        "build a tiny random-weight Qwen-VL model and tokenizer and save them (HF format)"),
    "sft": Stage("videorft.engine.trainers.sft:run",
                 "supervised fine-tuning on chain-of-thought records (fused log-prob loss, DeepSpeed)"),
    "grpo": Stage("videorft.engine.trainers.grpo:run",
                  "GRPO with accuracy, format and semantic rewards (HF or colocated vLLM rollouts)"),
    "eval": Stage("videorft.engine.eval.stage:run",
                  "answer a records file or one of the six video benchmarks and score it (eval.json); "
                  "or rescore saved answers"),
    "convert-benchmark": Stage("videorft.engine.eval.convert:run",
                               "write a benchmark's own release (lmms-eval layout) as a records file to evaluate"),
    "report": Stage("videorft.engine.report:run",
                    "combine evaluations into tables and results.json (benchmarks beside the paper's numbers)"),
    "synth": Stage("videorft.engine.synth_stage:run",
                   "write the synthetic video world: clips, scene graphs, train/test records"),
    "curate": Stage("videorft.engine.curate.stage:run",
                    "curate chains of thought: represent the video, reason, revise against the video, filter"),
    "train-encoder": Stage("videorft.engine.encoder.stage:run",
                           "train the tiny SigLIP of the semantic reward on the synthetic world's frame/caption pairs"),
}
