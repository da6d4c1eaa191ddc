"""The synthetic video world: videos, scene graphs and train/test records (`videorft synth` writes one).

    <output_dir>/videos/<split>-<i>.mp4   procedural clips (VP9 .webm when synth.codec is vp9)
    <output_dir>/scenes/<split>-<i>.json  ground-truth scene graph + the question asked about it
    <output_dir>/train.jsonl, test.jsonl  records in the VideoRFT / Video-R1 schema
    <output_dir>/world.json               the synth settings and what was written

Record paths are "./videos/..." relative to the world folder, which is therefore the
media_root of training and evaluation. Planning (scene graphs, questions, reasoning) is
sequential and cheap; rendering and encoding, the costly part, can use several processes.
The same seed always gives the same files.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from videorft.loaders.config import SynthConfig
from videorft.loaders.synth.builder import TIME_STEP_S, PlacementError, SceneBuilder
from videorft.loaders.synth.cot import reference_process, reference_solution
from videorft.loaders.synth.encode import video_suffix, write_video
from videorft.loaders.synth.kinds import KINDS, PROBLEM_TYPE_OF
from videorft.loaders.synth.levels import get_level
from videorft.loaders.synth.questions import Decks, Limits, Question
from videorft.loaders.synth.render import render_video
from videorft.loaders.synth.scene import Scene

SPLITS = ("train", "test")
WORLD_FILE = "world.json"
SCENE_ATTEMPTS = 100


class WorldConfigError(ValueError):
    """Synth settings that cannot make a world; the message names the `synth.` field."""


@dataclass
class Planned:
    """One record of the world before its video is rendered."""

    scene: Scene
    question: Question
    record: dict[str, Any]


def check_config(cfg: SynthConfig) -> list[str]:
    """Validate the synth settings; returns the question kinds to ask. Raises WorldConfigError."""
    level = get_level(cfg.difficulty)
    kinds = list(cfg.question_kinds) or list(level.kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise WorldConfigError(f"synth.question_kinds: unknown kind {unknown[0]!r}; choose from {sorted(KINDS)}")
    if cfg.width % 2 or cfg.height % 2 or min(cfg.width, cfg.height) < 32:
        raise WorldConfigError(f"synth.width/height must be even and at least 32, got {cfg.width}x{cfg.height}")
    if cfg.fps <= 0 or (cfg.fps * TIME_STEP_S) % 1:
        raise WorldConfigError(f"synth.fps must be a positive even number (events sit on a 0.5 s grid), got {cfg.fps}")
    if cfg.duration_s < 2.0:
        raise WorldConfigError(f"synth.duration_s must be at least 2 seconds, got {cfg.duration_s}")
    if cfg.max_objects < 1:
        raise WorldConfigError(f"synth.max_objects must be at least 1, got {cfg.max_objects}")
    if min(cfg.num_train, cfg.num_test) < 0:
        raise WorldConfigError("synth.num_train and synth.num_test must not be negative")
    video_suffix(cfg.codec)
    return kinds


def plan_split(cfg: SynthConfig, split: str, count: int) -> list[Planned]:
    """Scene graphs, questions and records of one split (no pixels yet)."""
    kinds = check_config(cfg)
    level = get_level(cfg.difficulty)
    num_frames = int(round(cfg.duration_s * cfg.fps))
    lim = Limits(level=level, max_objects=cfg.max_objects, duration_s=num_frames / cfg.fps)
    decks = Decks(random.Random(f"{cfg.seed}:{split}:decks"))
    suffix = video_suffix(cfg.codec)
    out = []
    for i in range(count):
        kind = decks.draw("kind", kinds)
        choose, build = KINDS[kind]
        try:
            choice = choose(decks, lim, kind)
        except ValueError as err:
            raise WorldConfigError(f"synth: {err}") from None
        rng = random.Random(f"{cfg.seed}:{split}:{i}")
        name = f"{split}-{i:05d}"
        for _ in range(SCENE_ATTEMPTS):
            builder = SceneBuilder(rng, level, name, cfg.width, cfg.height, cfg.fps, num_frames, cfg.max_objects)
            try:
                question = build(builder, choice, kind)
                break
            except PlacementError:
                continue
        else:
            raise WorldConfigError(f"synth: could not lay out a {kind!r} scene in {cfg.width}x{cfg.height} pixels; "
                              "use a larger frame or fewer synth.max_objects")
        scene = builder.scene
        record = {
            "problem_id": name, "problem": question.problem, "problem_type": PROBLEM_TYPE_OF[kind],
            "data_type": "video", "path": f"./videos/{name}{suffix}", "options": question.options,
            "process": reference_process(scene, question, cfg.cot_style),
            "solution": reference_solution(question), "data_source": f"synth-{level.name}/{kind}",
        }
        out.append(Planned(scene, question, record))
    return out


def read_scene(world_dir: str | Path, scene_id: str) -> tuple[Scene, dict[str, Any]]:
    """The scene graph of clip `scene_id` (a record's problem_id) and the question asked about it."""
    data = json.loads((Path(world_dir) / "scenes" / f"{scene_id}.json").read_text(encoding="utf-8"))
    return Scene.from_dict(data), data["question"]


def _render_and_encode(job: tuple[Scene, str, int, str]) -> str:
    scene, path, fps, codec = job
    write_video(render_video(scene), path, fps, codec)
    return path


def _prepare_dir(root: Path) -> None:
    """Create the world folder, clearing a previous world; refuse to touch other folders."""
    if root.exists() and any(root.iterdir()) and not (root / WORLD_FILE).is_file():
        raise WorldConfigError(f"synth.output_dir {root} is not empty and holds no {WORLD_FILE}; "
                          "pick a new folder so nothing else is overwritten")
    for sub in ("videos", "scenes"):
        if (root / sub).is_dir():
            shutil.rmtree(root / sub)
        (root / sub).mkdir(parents=True)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _workers(requested: int) -> int:
    return requested if requested > 0 else (os.cpu_count() or 1)


def generate_world(cfg: SynthConfig) -> dict[str, Any]:
    """Write the whole world described by `cfg` into cfg.output_dir; returns a summary."""
    t0 = time.perf_counter()
    plans = {split: plan_split(cfg, split, n) for split, n in zip(SPLITS, (cfg.num_train, cfg.num_test))}
    root = Path(cfg.output_dir)
    _prepare_dir(root)
    jobs = [(p.scene, str(root / p.record["path"]), cfg.fps, cfg.codec) for ps in plans.values() for p in ps]
    workers = min(_workers(cfg.workers), max(1, len(jobs)))
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_render_and_encode, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
    else:
        for job in jobs:
            _render_and_encode(job)
    for split, planned in plans.items():
        for p in planned:
            scene_doc = {**p.scene.to_dict(), "problem_id": p.record["problem_id"], "question": asdict(p.question)}
            _write_text(root / "scenes" / f"{p.scene.scene_id}.json", json.dumps(scene_doc, indent=1) + "\n")
        _write_text(root / f"{split}.jsonl", "".join(json.dumps(p.record) + "\n" for p in planned))
    seconds = time.perf_counter() - t0
    summary = {"output_dir": str(root), "train": len(plans["train"]), "test": len(plans["test"]),
               "workers": workers, "seconds": round(seconds, 2)}
    written = {"synth": asdict(cfg), "train": summary["train"], "test": summary["test"]}
    _write_text(root / WORLD_FILE, json.dumps(written, indent=2) + "\n")
    return summary
