"""The `videorft` command line.

    videorft <stage> --config FILE [section.field=value ...]   run one stage
    videorft run RECIPE_DIR [section.field=value ...]          run a recipe's stages in order
    videorft config [--config FILE] [overrides] [--explain]    print the resolved config or the schema

Bad invocations and config errors exit with status 2 and a message naming the problem.

Multi-process launches work as documented:
    deepspeed --num_gpus N --module videorft.engine.cli <stage> --config FILE
    torchrun --nproc_per_node N -m videorft.engine.cli <stage> --config FILE
The DeepSpeed launcher puts `--local_rank=<n>` right after the module name; it is accepted there
(the rank itself is read from LOCAL_RANK, which both launchers export).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

import yaml

from videorft.engine.config import RunConfig, load_config
from videorft.engine.config_loader import ConfigError, describe, to_dict
from videorft.engine.stages import STAGES

PIPELINE_FILE = "pipeline.yaml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videorft", description="Reinforced fine-tuning of video multimodal LLMs (VideoRFT).",
        epilog="Overrides take the form section.field=value, e.g. grpo.beta=0.02 run.device=cpu.")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, stage in STAGES.items():
        p = sub.add_parser(name, help=stage.help, description=stage.help)
        p.add_argument("--config", required=True, help="YAML recipe, e.g. recipes/tiny/%s.yaml" % name)
        p.add_argument("overrides", nargs="*", help="section.field=value")
        if name == "curate":
            p.add_argument("--merge", action="store_true",
                           help="join the finished shards under curate.output_dir/shards into curate.output_dir")
    p = sub.add_parser("run", help="run every stage listed in RECIPE_DIR/pipeline.yaml, in order",
                       description="Run a recipe: the stages listed in RECIPE_DIR/pipeline.yaml, in order.")
    p.add_argument("recipe", help="recipe folder, e.g. recipes/tiny")
    p.add_argument("overrides", nargs="*", help="section.field=value, applied to every stage")
    p = sub.add_parser("config", help="print the resolved config, or every field with its documentation",
                       description="Validate a recipe and print the resolved config (or --explain the schema).")
    p.add_argument("--config", help="YAML recipe to resolve (defaults when omitted)")
    p.add_argument("--explain", action="store_true", help="list every field, its type, default and meaning")
    p.add_argument("overrides", nargs="*", help="section.field=value")
    return parser


def read_pipeline(recipe: Path) -> list[tuple[str, Path]]:
    """(stage, config file) pairs of RECIPE_DIR/pipeline.yaml's `stages` list."""
    path = recipe / PIPELINE_FILE
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; a recipe folder lists its stages there")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected a non-empty list under 'stages'")
    steps = []
    for i, entry in enumerate(entries):
        if not (isinstance(entry, dict) and len(entry) == 1):
            raise ConfigError(f"{path}: stages[{i}] must be a single 'stage: config.yaml' pair")
        (stage, config), = entry.items()
        if stage not in STAGES:
            raise ConfigError(f"{path}: stages[{i}]: unknown stage {stage!r}; choose from {sorted(STAGES)}")
        steps.append((stage, recipe / str(config)))
    return steps


def pipeline_prerequisites(recipe: Path) -> list[Path]:
    """Recipe folders that must have run before this one (pipeline.yaml's optional `after` list,
    relative to the recipe folder): their outputs are this pipeline's inputs."""
    data = yaml.safe_load((recipe / PIPELINE_FILE).read_text(encoding="utf-8")) or {}
    after = data.get("after", [])
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        raise ConfigError(f"{recipe / PIPELINE_FILE}: 'after' must be a list of recipe folders")
    return [(recipe / a).resolve() for a in after]


def run_recipe(recipe: Path, overrides: Sequence[str]) -> dict:
    """Validate every stage's config first, then run the stages in order."""
    steps = [(stage, load_config(path, overrides)) for stage, path in read_pipeline(recipe)]
    results = {}
    for stage, cfg in steps:
        results[stage] = STAGES[stage].load()(cfg)
    return results


def _explain() -> str:
    lines = []
    for name, type_name, default, doc in describe(RunConfig):
        lines.append(f"{name}  ({type_name}, default {default!r})\n    {doc}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `videorft` console script; returns the process exit status."""
    args = _parser().parse_args(argv)
    if args.local_rank is not None:
        os.environ.setdefault("LOCAL_RANK", str(args.local_rank))   # the launcher exports it too
    try:
        if args.command == "config":
            if args.explain:
                print(_explain())
            else:
                print(yaml.safe_dump(to_dict(load_config(args.config, args.overrides)), sort_keys=False), end="")
            return 0
        if args.command == "run":
            results = run_recipe(Path(args.recipe), args.overrides)
        elif getattr(args, "merge", False):
            from videorft.engine.curate.merge import merge

            results = merge(load_config(args.config, args.overrides))
        else:
            cfg = load_config(args.config, args.overrides)
            results = STAGES[args.command].load()(cfg)
    except ConfigError as err:
        print(f"videorft: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
