"""`videorft convert-benchmark`: write a benchmark's own release as a records file to evaluate.

The Video-R1 / VideoRFT evaluation release (eval_<name>.json) is read as it is. A user who has
the benchmarks' own releases instead, in the layouts lmms-eval reads, converts them here:

    videorft convert-benchmark --config recipes/qwen2_5_vl_7b/eval.yaml convert.benchmark=videomme \
        convert.source=data/Video-MME/videomme/test-00000-of-00001.parquet \
        convert.output_file=data/eval/eval_videomme.json convert.video_dir=Video-MME/data

What each converter reads (source: the Hugging Face dataset lmms-eval loads):

- vsibench: nyu-visionx/VSI-Bench, test split; id, dataset, scene_name, question, question_type,
  options, ground_truth; video <dataset>/<scene_name>.mp4.
- videommmu: lmms-eval/VideoMMMU, its Perception, Comprehension and Adaptation configs (the track is
  the name of the split's folder or file); id (subject inside it), question, options, answer,
  question_type; video <subject group>/<id>.mp4.
- mmvu: lmms-eval/MMVU, validation; the multiple-choice items (VideoRFT scores these 625); id,
  video_path, question, choices (A-E), answer, question_type; video <video_path>.
- mvbench: OpenGVLab/MVBench json/<task>.json (the task is the file name); video, question,
  candidates, answer (the text of a candidate), start/end kept; video <task folder>/<video>.
- tempcompass: lmms-eval/TempCompass, multi-choice (files under a multi-choice folder when the
  source is a folder); video_id, question (its option lines are split off), answer ("B. ..."),
  dim; video <video_id>.mp4.
- videomme: lmms-eval/Video-MME, test; videoID, question, options, answer, duration and the other
  fields (all kept); video <videoID>.mp4.

Every record gets problem_id 1..N (the source's id is kept as `source_id`), `path`
"./<convert.video_dir>/<video>", and the field its benchmark's breakdown reads (`track`, `task`,
`dim`, `discipline`, `duration`, `original_question_type`). Items that cannot be scored by rule
(open-ended MMVU and VideoMMMU questions whose answer is not a number) are left out and counted.
Reading .parquet needs pyarrow (`pip install pyarrow`); JSON and JSONL need nothing.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Optional

from videorft.engine.config import RunConfig
from videorft.engine.eval.benchmarks import (MMVU_SUBJECT_DISCIPLINE, MVBENCH_TASKS, VIDEOMMMU_TRACKS,
                                             VSI_TASK_TYPES, get_benchmark)
from videorft.engine.rewards.numbers import parse_number
from videorft.engine.run_dir import RunDir
from videorft.loaders.records import write_records

log = logging.getLogger("videorft")

SOURCE_SUFFIXES = (".json", ".jsonl", ".parquet")
VSI_NUMERICAL = VSI_TASK_TYPES[:4]
"""VSI-Bench question types answered with a number (scored by MRA)."""

MVBENCH_VIDEO_FOLDERS = {
    "action_antonym": "ssv2_video_mp4", "action_count": "perception/videos",
    "action_localization": "sta/sta_video_segment", "action_prediction": "star/Charades_segment",
    "action_sequence": "star/Charades_segment", "character_order": "perception/videos",
    "counterfactual_inference": "clevrer/video_validation", "egocentric_navigation": "vlnqa",
    "episodic_reasoning": "tvqa/video_fps3_hq_segment", "fine_grained_action": "Moments_in_Time_Raw/videos",
    "fine_grained_pose": "nturgbd_convert", "moving_attribute": "clevrer/video_validation",
    "moving_count": "clevrer/video_validation", "moving_direction": "clevrer/video_validation",
    "object_existence": "clevrer/video_validation", "object_interaction": "star/Charades_segment",
    "object_shuffle": "perception/videos", "scene_transition": "scene_qa/video", "state_change": "perception/videos",
    "unexpected_action": "FunQA_test/test",
}
"""Where each MVBench task's videos lie in the benchmark's video release (segmented clips)."""

VIDEOMMMU_SUBJECT_GROUPS = {
    "Art": ("Art", "Art_Theory", "Design", "Music"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Humanities": ("History", "Literature", "Sociology", "Psychology"),
    "Engineering": ("Agriculture", "Architecture_and_Engineering", "Computer_Science", "Electronics",
                    "Energy_and_Power", "Materials", "Mechanical_Engineering"),
    "Medicine": ("Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine", "Pharmacy",
                 "Public_Health"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
}
"""VideoMMMU's video folders: each subject's lecture videos lie in its group's folder."""
_SUBJECT_GROUP = {subject: group for group, subjects in VIDEOMMMU_SUBJECT_GROUPS.items() for subject in subjects}

_OPTION = re.compile(r"^\s*\(?([A-Z])[.):]\s*(.*)$")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class Skip(Exception):
    """An item that is left out of the converted file; the message is the reason (counted)."""


def lettered(options: list[str]) -> list[str]:
    """Options as "A. text" lines (kept as they are when already lettered in order)."""
    if all(_OPTION.match(o) and _OPTION.match(o).group(1) == LETTERS[i] for i, o in enumerate(options)):
        return [o.strip() for o in options]
    return [f"{LETTERS[i]}. {str(o).strip()}" for i, o in enumerate(options)]


def answer_letter(answer: Any, options: list[str]) -> str:
    """The option letter of `answer`: a letter ("B", "B.", "(B) text") or the text of one option."""
    text = str(answer).strip()
    match = _OPTION.match(text)
    if match and match.group(1) in LETTERS[:len(options)]:
        return match.group(1)
    if len(text) == 1 and text in LETTERS[:len(options)]:
        return text
    for i, option in enumerate(options):
        if _OPTION.sub(r"\2", option).strip() == text:
            return LETTERS[i]
    raise Skip("answer matches no option")


def _record(problem: str, problem_type: str, video: str, solution: str, options: Optional[list[str]],
            **extra: Any) -> dict[str, Any]:
    """A record in the release layout (problem_id and the path prefix are filled in later)."""
    return {"problem": problem.strip(), "problem_type": problem_type, "data_type": "video", "path": video,
            "options": options, "process": "", "solution": f"<answer>{solution}</answer>", "data_source": "",
            **extra}


def vsibench_item(row: dict[str, Any], source: Path) -> dict[str, Any]:
    """nyu-visionx/VSI-Bench: a multiple-choice or numerical (MRA) spatial question about a scan."""
    kind = row["question_type"]
    if kind not in VSI_TASK_TYPES:
        raise Skip(f"unknown question_type {kind!r}")
    video = f"{row['dataset']}/{row['scene_name']}.mp4"
    extra = {"original_question_type": kind, "source_id": row.get("id"), "data_source": row["dataset"]}
    if kind in VSI_NUMERICAL:
        if parse_number(str(row["ground_truth"])) is None:
            raise Skip("numerical ground_truth is not a number")
        return _record(row["question"], "regression", video, str(row["ground_truth"]).strip(), None, **extra)
    options = lettered(list(row["options"]))
    return _record(row["question"], "multiple choice", video, answer_letter(row["ground_truth"], options),
                   options, **extra)


def _track(source: Path) -> str:
    """The track named by the file or its folder ("Perception/test-00000-of-00001.parquet")."""
    for part in (source.name, source.parent.name):
        for track in VIDEOMMMU_TRACKS:
            if part.lower().startswith(track.lower()):
                return track
    raise ValueError(f"convert.source: neither {source.name} nor its folder names a VideoMMMU track "
                     f"({', '.join(VIDEOMMMU_TRACKS)})")


def videommmu_item(row: dict[str, Any], source: Path) -> dict[str, Any]:
    """lmms-eval/VideoMMMU: the track is the split's folder, the subject is inside the id."""
    subject = "_".join(str(row["id"]).split("_")[1:-1])
    if subject not in _SUBJECT_GROUP:
        raise Skip(f"unknown subject {subject!r}")
    video = f"{_SUBJECT_GROUP[subject]}/{row['id']}.mp4"
    extra = {"track": _track(source), "subject": subject, "source_id": row["id"],
             "original_question_type": row.get("question_type")}
    if row.get("question_type") == "multiple-choice":
        options = lettered(list(row["options"]))
        return _record(row["question"], "multiple choice", video, answer_letter(row["answer"], options),
                       options, **extra)
    if parse_number(str(row["answer"])) is None:
        raise Skip("open question without a numerical answer")
    return _record(row["question"], "numerical", video, str(row["answer"]).strip(), None, **extra)


def mmvu_item(row: dict[str, Any], source: Path) -> dict[str, Any]:
    """lmms-eval/MMVU: multiple-choice items (VideoRFT scores these 625), choices A-E as a mapping."""
    if row.get("question_type") != "multiple-choice":
        raise Skip("open-ended question (VideoRFT scores the multiple-choice subset)")
    choices = row["choices"] if isinstance(row["choices"], dict) else json.loads(row["choices"])
    options = [f"{k}. {str(v).strip()}" for k, v in sorted(choices.items()) if v not in (None, "")]
    subject = Path(row["video_path"]).parent.name
    return _record(row["question"], "multiple choice", row["video_path"], answer_letter(row["answer"], options),
                   options, discipline=MMVU_SUBJECT_DISCIPLINE.get(subject), subject=subject, source_id=row["id"])


def mvbench_item(row: dict[str, Any], source: Path) -> dict[str, Any]:
    """OpenGVLab/MVBench json/<task>.json: the answer is the text of one candidate."""
    task = source.stem
    if task not in MVBENCH_TASKS:
        raise ValueError(f"convert.source: {source} is not one of MVBench's json/<task>.json files")
    candidates = [str(c) for c in row["candidates"]]
    if row["answer"] not in candidates:
        raise Skip("answer is not among the candidates")
    options = [f"{LETTERS[i]}. {c}" for i, c in enumerate(candidates)]
    extra = {k: row[k] for k in ("start", "end") if k in row}
    return _record(row["question"], "multiple choice", f"{MVBENCH_VIDEO_FOLDERS[task]}/{row['video']}",
                   LETTERS[candidates.index(row["answer"])], options, task=task, **extra)


def tempcompass_item(row: dict[str, Any], source: Path) -> dict[str, Any]:
    """lmms-eval/TempCompass multi-choice: the options are lines of the question, the answer "B. ..."."""
    lines = str(row["question"]).splitlines()
    options = [f"{m.group(1)}. {m.group(2).strip()}" for m in map(_OPTION.match, lines) if m]
    problem = "\n".join(line for line in lines if not _OPTION.match(line))
    if len(options) < 2:
        raise Skip("question lists no options")
    return _record(problem, "multiple choice", f"{row['video_id']}.mp4", answer_letter(row["answer"], options),
                   options, dim=row["dim"], source_id=row["video_id"])


def videomme_item(row: dict[str, Any], source: Path) -> dict[str, Any]:
    """lmms-eval/Video-MME: lettered options and a letter answer; every source field is kept."""
    options = lettered(list(row["options"]))
    kept = {k: v for k, v in row.items() if k not in ("options",)}
    return _record(row["question"], "multiple choice", f"{row['videoID']}.mp4", answer_letter(row["answer"], options),
                   options, **{**kept, "source_id": row.get("question_id")})


CONVERTERS: dict[str, Callable[[dict[str, Any], Path], dict[str, Any]]] = {
    "vsibench": vsibench_item, "videommmu": videommmu_item, "mmvu": mmvu_item, "mvbench": mvbench_item,
    "tempcompass": tempcompass_item, "videomme": videomme_item,
}
"""One item converter per benchmark: source row (and the file it came from) -> release-layout record."""


def source_files(source: Path, benchmark: str) -> list[Path]:
    """The annotation files of convert.source: the file itself, or every JSON/JSONL/parquet file in
    the folder (for TempCompass only the multi-choice ones)."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FileNotFoundError(f"convert.source {source} does not exist")
    files = sorted(p for p in source.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file())
    if benchmark == "tempcompass":
        files = [p for p in files if re.search(r"multi[-_ ]?choice", str(p.relative_to(source)), re.IGNORECASE)]
    if not files:
        raise FileNotFoundError(f"convert.source {source} holds no {'/'.join(SOURCE_SUFFIXES)} annotation files")
    return files


def load_rows(path: Path) -> list[dict[str, Any]]:
    """The items of a JSON array, JSON-lines or parquet file."""
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise RuntimeError(f"{path}: reading .parquet needs pyarrow (pip install pyarrow)") from None
        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8-sig")
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def convert_items(benchmark: str, files: list[Path], video_dir: str) -> tuple[list[dict[str, Any]], Counter]:
    """Converted records (problem_id 1..N, paths under video_dir) and the count of each skip reason."""
    item, records, skipped = CONVERTERS[benchmark], [], Counter()
    for path in files:
        for row in load_rows(path):
            try:
                record = item(row, path)
            except Skip as reason:
                skipped[str(reason)] += 1
                continue
            except (KeyError, TypeError) as err:
                raise ValueError(f"{path}: item {row!r:.200}: missing or malformed field {err}") from None
            record["path"] = "./" + "/".join(p.strip("/") for p in (video_dir, record["path"]) if p)
            records.append({"problem_id": len(records) + 1, **record})
    return records, skipped


def _missing_media(records: list[dict[str, Any]], media_root: Path) -> list[str]:
    return [r["path"] for r in records if not (media_root / r["path"]).is_file()]


def run(cfg: RunConfig) -> dict[str, Any]:
    """Convert convert.source into convert.output_file; returns what was written and left out."""
    c = cfg.convert
    if c.benchmark is None:
        raise ValueError(f"convert.benchmark is required: one of {list(CONVERTERS)}")
    if not c.source or not c.output_file:
        raise ValueError("convert.source and convert.output_file are required")
    run_dir = RunDir(cfg, "convert-benchmark")
    files = source_files(Path(c.source), c.benchmark)
    records, skipped = convert_items(c.benchmark, files, c.video_dir)
    out = Path(c.output_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_records(records, out)
    summary: dict[str, Any] = {"benchmark": c.benchmark, "output_file": str(out), "written": len(records),
                               "source_files": [str(p) for p in files], "skipped": dict(skipped)}
    if c.check_media:
        missing = _missing_media(records, Path(cfg.data.media_root))
        summary["missing_media"] = len(missing)
        if missing:
            log.warning("%d of %d videos are missing under data.media_root %s; first: %s", len(missing),
                        len(records), cfg.data.media_root, missing[:3])
    log.info("%s: wrote %d records to %s (left out: %s)", get_benchmark(c.benchmark).title, len(records), out,
             dict(skipped) or "none")
    run_dir.close()
    return summary
