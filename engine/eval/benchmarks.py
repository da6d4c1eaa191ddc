"""The six video benchmarks of the VideoRFT paper, in one registry, plus the plain records schema.

Each entry holds what a reader and a scorer need to know about a benchmark's evaluation file as
the Video-R1 / VideoRFT release lays it out (`eval_<name>.json`: a JSON array in the records
schema, media paths "./Evaluation/<Bench>/..." under one media root, extra keys per benchmark):
the file's name, the breakdown the benchmark defines and how to find a record's category for
it, and whether the official per-task mean is reported next to VideoRFT's number.

Where the release file carries the category as a field, it is read from there; where it does
not, it is derived from the layout the release uses, and converted files (engine/eval/convert.py)
write the field explicitly:

- VSI-Bench: `original_question_type` (10 types; 3 relative-direction levels form one task).
- VideoMMMU: the track. The release lists 300 Adaptation, then 300 Comprehension, then 300
  Perception questions (ids 1-900, tracks in alphabetical order, each lecture video once per
  track); converted files carry `track`.
- MMVU: the discipline (Science, Engineering, Healthcare, Humanities & Social Science) of the
  subject whose folder holds the video ("videos/Chemistry/0.mp4"), as lmms-eval reads it.
- MVBench: the task. The release lists the 20 tasks in alphabetical order, 200 questions each
  (ids 1-4000); a record counts for the task its id block names only if its video sits in that
  task's source folder (e.g. action_antonym in ssv2_video), so a reordered file is not misread.
  Converted files carry `task`.
- TempCompass: the temporal dimension (`dim`: speed, direction, action, order, attribute_change).
- VideoMME: the duration class (`duration`: short, medium, long).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Callable, Optional

from videorft.loaders.records import Record

VSI_TASK_TYPES = ("object_counting", "object_abs_distance", "object_size_estimation", "room_size_estimation",
                  "object_rel_distance", "object_rel_direction_easy", "object_rel_direction_medium",
                  "object_rel_direction_hard", "route_planning", "obj_appearance_order")
"""VSI-Bench question types: four numerical (MRA) then six multiple-choice."""
VSI_MERGED_TASKS = {f"object_rel_direction_{level}": "object_rel_direction" for level in ("easy", "medium", "hard")}
"""Question types averaged into one task before the official 8-task mean."""

VIDEOMMMU_TRACKS = ("Perception", "Comprehension", "Adaptation")
"""The three VideoMMMU tracks, in the benchmark's own order."""
VIDEOMMMU_RELEASE_ORDER = ("Adaptation", "Comprehension", "Perception")
"""Track order of the release file: 300 questions each (ids 1-300, 301-600, 601-900)."""
VIDEOMMMU_TRACK_SIZE = 300

MVBENCH_TASK_FOLDERS = {
    "action_antonym": "ssv2_video", "action_count": "perception", "action_localization": "sta",
    "action_prediction": "star", "action_sequence": "star", "character_order": "perception",
    "counterfactual_inference": "clevrer", "egocentric_navigation": "vlnqa", "episodic_reasoning": "tvqa",
    "fine_grained_action": "Moments_in_Time_Raw", "fine_grained_pose": "nturgbd", "moving_attribute": "clevrer",
    "moving_count": "clevrer", "moving_direction": "clevrer", "object_existence": "clevrer",
    "object_interaction": "star", "object_shuffle": "perception", "scene_transition": "scene_qa",
    "state_change": "perception", "unexpected_action": "FunQA_test",
}
"""The 20 MVBench tasks (alphabetical, the release's order) and the source folder each one's
videos come from (a folder of the path is that name, or that name and "_...": ssv2_video_mp4)."""
MVBENCH_TASKS = tuple(MVBENCH_TASK_FOLDERS)
MVBENCH_TASK_SIZE = 200

MMVU_DISCIPLINES = {
    "Science": ("Astronomy", "Biology", "Chemistry", "Electromagnetism", "Geography", "Materials_Science",
                "Mechanics", "Modern_Physics", "Neurobiology", "Thermodynamics"),
    "Engineering": ("Biomedical_Engineering", "Civil_Engineering", "Computer_Science", "Electrical_Engineering",
                    "Electronics_and_Communication", "Mechanical_Engineering"),
    "Healthcare": ("Basic_Medicine", "Clinical_Medicine", "Dentistry", "Pharmacy", "Preventive_Medicine"),
    "Humanities & Social Science": ("Art", "Economics", "History", "Law", "Literature", "Management"),
}
"""MMVU's four disciplines and their 27 subjects (the subject names its video folder)."""
MMVU_SUBJECT_DISCIPLINE = {subject: d for d, subjects in MMVU_DISCIPLINES.items() for subject in subjects}

TEMPCOMPASS_DIMS = ("action", "speed", "direction", "order", "attribute_change")
"""TempCompass's temporal dimensions."""
VIDEOMME_DURATIONS = ("short", "medium", "long")
"""VideoMME's duration classes (under 2 min, 4-15 min, 30-60 min)."""

CategoryOf = Callable[[Record], Optional[str]]


@dataclass(frozen=True)
class Benchmark:
    """What the reader and the scorer know about one benchmark."""

    name: str
    """The eval.benchmark value."""
    title: str
    """Name in tables (the paper's column title)."""
    release_file: str
    """File name in the Video-R1 / VideoRFT evaluation release ("" for plain records)."""
    breakdown: str
    """What the categories of the breakdown are ("task", "duration", ...)."""
    category: CategoryOf
    """The record's category for the breakdown, or None when the file does not say."""
    order: tuple[str, ...] = ()
    """Categories in the order tables list them (others follow alphabetically)."""
    merged_tasks: dict[str, str] = field(default_factory=dict)
    """For the official mean of per-task scores: categories averaged into one task first. Empty
    means the benchmark reports no such mean (only VSI-Bench does)."""
    items: Optional[int] = None
    """Questions in the release file, for a warning when a file holds fewer."""

    def ordered(self, categories) -> list[str]:
        """`categories` sorted by `order`, then alphabetically."""
        rank = {c: i for i, c in enumerate(self.order)}
        return sorted(categories, key=lambda c: (rank.get(c, len(rank)), c))


def field_value(*names: str, allowed: tuple[str, ...] = ()) -> CategoryOf:
    """A category read from the first of `names` that the record carries (and `allowed` lists)."""
    def read(record: Record) -> Optional[str]:
        for name in names:
            value = record.extra.get(name)
            if isinstance(value, str) and value.strip() and (not allowed or value.strip() in allowed):
                return value.strip()
        return None
    return read


def numeric_id(record: Record) -> Optional[int]:
    """The record's problem_id as an integer (3, "3", or "3#2" after a repeat), else None."""
    if isinstance(record.problem_id, int):
        return record.problem_id
    head = str(record.problem_id).split("#")[0]
    return int(head) if head.isdigit() else None


def _id_block(record: Record, names: tuple[str, ...], size: int) -> Optional[str]:
    number = numeric_id(record)
    if number is None or not 1 <= number <= size * len(names):
        return None
    return names[(number - 1) // size]


def videommmu_track(record: Record) -> Optional[str]:
    """`track`, else the release's id block (Adaptation 1-300, Comprehension, Perception)."""
    return (field_value("track", allowed=VIDEOMMMU_TRACKS)(record)
            or _id_block(record, VIDEOMMMU_RELEASE_ORDER, VIDEOMMMU_TRACK_SIZE))


def mvbench_task(record: Record) -> Optional[str]:
    """`task`, else the release's id block when the video lies in that task's source folder."""
    explicit = field_value("task", allowed=MVBENCH_TASKS)(record)
    if explicit:
        return explicit
    task = _id_block(record, MVBENCH_TASKS, MVBENCH_TASK_SIZE)
    if task is None:
        return None
    root = MVBENCH_TASK_FOLDERS[task]
    folders = PurePosixPath(record.path.replace("\\", "/")).parts[:-1]
    return task if any(f == root or f.startswith(root + "_") for f in folders) else None


def mmvu_discipline(record: Record) -> Optional[str]:
    """`discipline`, else the discipline of the subject folder under "videos/" ("videos/Chemistry/0.mp4")."""
    explicit = field_value("discipline", allowed=tuple(MMVU_DISCIPLINES))(record)
    if explicit:
        return explicit
    parts = PurePosixPath(record.path.replace("\\", "/")).parts
    subject = parts[-2] if len(parts) >= 3 and parts[-3] == "videos" else ""
    return MMVU_SUBJECT_DISCIPLINE.get(subject)


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("vsibench", "VSI-Bench", "eval_vsibench.json", "question type",
              field_value("original_question_type", "question_type", allowed=VSI_TASK_TYPES),
              order=VSI_TASK_TYPES, merged_tasks=VSI_MERGED_TASKS, items=5130),
    Benchmark("videommmu", "VideoMMMU", "eval_videommmu.json", "track", videommmu_track,
              order=VIDEOMMMU_TRACKS, items=900),
    Benchmark("mmvu", "MMVU", "eval_mmvu.json", "discipline", mmvu_discipline, order=tuple(MMVU_DISCIPLINES),
              items=625),
    Benchmark("mvbench", "MVBench", "eval_mvbench.json", "task", mvbench_task, order=MVBENCH_TASKS, items=4000),
    Benchmark("tempcompass", "TempCompass", "eval_tempcompass.json", "dimension",
              field_value("dim", "original_question_type", "task_type", allowed=TEMPCOMPASS_DIMS),
              order=TEMPCOMPASS_DIMS),
    Benchmark("videomme", "VideoMME", "eval_videomme.json", "duration",
              field_value("duration", allowed=VIDEOMME_DURATIONS), order=VIDEOMME_DURATIONS, items=2700),
    Benchmark("records", "records", "", "data source",
              lambda record: record.data_source or None),
)}
"""Every benchmark eval.benchmark may name; the six of the paper in its column order, then records."""

PAPER_BENCHMARKS = tuple(name for name in BENCHMARKS if name != "records")
"""The six benchmarks of the paper's main table, in its column order."""


def get_benchmark(name: str) -> Benchmark:
    """The registry entry of `name`; a ValueError lists the choices."""
    if name not in BENCHMARKS:
        raise ValueError(f"eval.benchmark {name!r} is not one of {list(BENCHMARKS)}")
    return BENCHMARKS[name]
