"""Read and write records in the VideoRFT / Video-R1 schema (JSON arrays or JSONL).

    {"problem_id": 2, "problem": "...", "problem_type": "multiple choice", "data_type": "video",
     "path": "./videos/x.mp4", "options": ["A. ...", "B. ..."], "process": "<think>...</think>",
     "solution": "<answer>A</answer>", "data_source": "..."}

Every media path resolves under one media root (`./x.mp4` -> media_root/x.mp4) for the policy,
SFT and the rewards alike. A malformed record is an error naming the file, the line and the
field, or, with on_bad_record="skip", is left out and counted. Keys outside the schema are
kept in `Record.extra` so files round-trip.

The reader accepts what the released loaders accept: JSON lines inside a `.json` file, a UTF-8
byte-order mark, CRLF line ends, and a missing or numeric `problem_id`. A missing id is derived
from the file name and the record's position ("eval_mvbench-17"), so it is the same on every
read; a repeated id gets a "#2", "#3", ... suffix (and a warning), so an evaluation that resumes
by id never takes one record for another. A caller that scores records passes `validate` (the
rewards' solution check), so a record whose answer cannot be scored is rejected here, when the
file is read, and not in the middle of a training step or an evaluation.

The release of MVBench marks its 200 episodic-reasoning questions `data_type: "frame"` (the
source was a folder of frames) while their `path` is an encoded .mp4; such a record is read as a
video. (The released evaluation script passed those questions to the model without their video,
since its vision loader only knows image and video items.)
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Optional, Sequence

from videorft.loaders.schema import DATA_TYPES, PROBLEM_TYPES

log = logging.getLogger("videorft")

SCHEMA_KEYS = ("problem_id", "problem", "problem_type", "data_type", "path", "options", "process", "solution",
               "data_source")
"""Record keys in the order they are written."""
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov")
"""Media suffixes that make a record whose data_type says "frame" a video record."""
_ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)


SolutionCheck = Callable[[str, str], Any]
"""Called with (solution, problem_type); raises ValueError when the solution cannot be scored."""


class RecordError(ValueError):
    """A record that does not fit the schema; the message starts with "file:line: field"."""


@dataclass
class Record:
    """One question about one video or image."""

    problem_id: str | int
    problem: str
    problem_type: str
    """One of loaders/schema.py PROBLEM_TYPES."""
    data_type: str
    """ "video" or "image"."""
    path: str
    """Media path as written in the file, usually "./..." relative to the media root."""
    solution: str
    """Ground truth, normally "<answer>...</answer>"."""
    options: list[str] = field(default_factory=list)
    process: str = ""
    """Reference reasoning "<think>...</think>" (needed for SFT)."""
    data_source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys outside the schema, kept for round trips."""
    origin: str = ""
    """ "file:line" the record was read from (for logs and errors)."""

    @property
    def answer(self) -> str:
        """The text inside <answer></answer> of the solution (the whole solution when untagged)."""
        match = _ANSWER.search(self.solution)
        return match.group(1).strip() if match else self.solution.strip()

    def media_path(self, media_root: str | os.PathLike) -> Path:
        """Absolute-or-root-relative location of the media: "./a/b.mp4" -> media_root/a/b.mp4."""
        path = Path(self.path)
        return path if path.is_absolute() else Path(media_root) / path

    def to_dict(self) -> dict[str, Any]:
        """The record as written to JSON: schema keys in order, then the extra keys."""
        out = {key: getattr(self, key) for key in SCHEMA_KEYS}
        out.update(self.extra)
        return out


@dataclass
class RecordSet:
    """Records read from one file, and what was skipped."""

    records: list[Record]
    skipped: list[str] = field(default_factory=list)
    """One message per skipped record ("file:line: field: problem")."""
    renamed: list[str] = field(default_factory=list)
    """One message per repeated problem_id that was made unique ("file:line: problem_id: 'a' -> 'a#2'")."""

    def __len__(self) -> int:
        return len(self.records)


def _need_str(data: dict, key: str, where: str, required: bool = True) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise RecordError(f"{where}: {key}: missing (required field)")
        return ""
    if not isinstance(value, str):
        raise RecordError(f"{where}: {key}: expected a string, got {type(value).__name__}")
    if required and not value.strip():
        raise RecordError(f"{where}: {key}: empty")
    return value


def _problem_id(data: dict, where: str, default: Optional[str]) -> str | int:
    """The record's id: a string or an integer (3.0 reads as 3), or `default` when it has none."""
    pid = data.get("problem_id")
    if pid is None and default is not None:
        return default
    if isinstance(pid, float) and not isinstance(pid, bool):
        return int(pid) if pid.is_integer() else str(pid)
    if pid is None or isinstance(pid, bool) or not isinstance(pid, (str, int)):
        raise RecordError(f"{where}: problem_id: missing or not a string/number")
    if isinstance(pid, str) and not pid.strip():
        raise RecordError(f"{where}: problem_id: empty")
    return pid


def parse_record(data: Any, where: str, require_process: bool = False, validate: Optional[SolutionCheck] = None,
                 default_id: Optional[str] = None) -> Record:
    """Validate one decoded JSON value as a record; errors start with `where` and name the field.

    validate: the solution check of the scorer (see SolutionCheck), run once per record.
    default_id: the id given to a record without one (None: the id is required).
    """
    if not isinstance(data, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(data).__name__}")
    pid = _problem_id(data, where, default_id)
    kind = _need_str(data, "problem_type", where)
    if kind not in PROBLEM_TYPES:
        raise RecordError(f"{where}: problem_type: {kind!r} is not one of {list(PROBLEM_TYPES)}")
    media = _need_str(data, "data_type", where)
    if media == "frame" and Path(str(data.get("path", ""))).suffix.lower() in VIDEO_SUFFIXES:
        media = "video"                      # see the module doc: MVBench's encoded frame folders
    if media not in DATA_TYPES:
        raise RecordError(f"{where}: data_type: {media!r} is not one of {list(DATA_TYPES)}")
    options = data.get("options") or []
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise RecordError(f"{where}: options: expected a list of strings")
    record = Record(problem_id=pid, problem=_need_str(data, "problem", where),
                    problem_type=kind, data_type=media, path=_need_str(data, "path", where),
                    solution=_need_str(data, "solution", where), options=list(options),
                    process=_need_str(data, "process", where, required=require_process),
                    data_source=_need_str(data, "data_source", where, required=False),
                    extra={k: v for k, v in data.items() if k not in SCHEMA_KEYS}, origin=where)
    if require_process and not record.process.strip().startswith("<think>"):
        raise RecordError(f"{where}: process: expected reasoning wrapped in <think></think>")
    if validate is not None:
        try:
            validate(record.solution, record.problem_type)
        except ValueError as err:
            raise RecordError(f"{where}: solution: {err}") from None
    return record


def _json_items(text: str, name: str) -> Iterator[tuple[int, Any]]:
    """(line, value) for each element of a top-level JSON array, with the line it starts on."""
    decoder = json.JSONDecoder()
    pos = len(text) - len(text.lstrip()) + 1          # past the opening "["
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            raise RecordError(f"{name}:{text.count(chr(10), 0, pos) + 1}: unterminated JSON array")
        if text[pos] == "]":
            return
        line = text.count("\n", 0, pos) + 1
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise RecordError(f"{name}:{line}: not valid JSON: {err.msg}") from None
        yield line, value


def _jsonl_items(text: str, name: str) -> Iterator[tuple[int, Any]]:
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as err:
            yield line_no, RecordError(f"{name}:{line_no}: not valid JSON: {err.msg}")


def _items(text: str, path: Path) -> Iterator[tuple[int, Any]]:
    """A JSON array when the text starts with "[" (and the file is not .jsonl), else JSON lines."""
    if path.suffix != ".jsonl" and text.lstrip().startswith("["):
        return _json_items(text, str(path))
    return _jsonl_items(text, str(path))


def _unique_ids(records: list[Record], path: Path) -> list[str]:
    """Give every repeated problem_id a "#k" suffix (k = 2, 3, ...); one message per renamed record."""
    seen = {str(r.problem_id) for r in records}
    counts: dict[str, int] = {}
    renamed = []
    for record in records:
        key = str(record.problem_id)
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 1:
            continue
        k = counts[key]
        while f"{key}#{k}" in seen:
            k += 1
        record.problem_id = f"{key}#{k}"
        seen.add(record.problem_id)
        renamed.append(f"{record.origin}: problem_id: {key!r} repeats; renamed {record.problem_id!r}")
    if renamed:
        log.warning("%s: %d repeated problem_id(s) made unique; first: %s", path, len(renamed), renamed[0])
    return renamed


def read_records(path: str | os.PathLike, on_bad_record: Literal["error", "skip"] = "error",
                 max_samples: int | None = None, require_process: bool = False,
                 validate: Optional[SolutionCheck] = None) -> RecordSet:
    """Records of a .json (array or JSON lines) or .jsonl file, validated field by field.

    on_bad_record "error" raises RecordError at the first bad record ("file:line: field: ...");
    "skip" leaves bad records out, counts them in RecordSet.skipped and logs a summary.
    require_process: the `process` field must hold <think> reasoning (SFT data).
    validate: the scorer's solution check (SolutionCheck); a record it rejects is a bad record.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"record file {path} does not exist")
    text = path.read_text(encoding="utf-8-sig")               # drops a UTF-8 byte-order mark
    out = RecordSet(records=[])
    for position, (line, value) in enumerate(_items(text, path), 1):
        if max_samples is not None and len(out.records) >= max_samples:
            break
        try:
            if isinstance(value, RecordError):
                raise value
            out.records.append(parse_record(value, f"{path}:{line}", require_process, validate,
                                            default_id=f"{path.stem}-{position}"))
        except RecordError as err:
            if on_bad_record != "skip":
                raise
            out.skipped.append(str(err))
    if out.skipped:
        log.warning("%s: skipped %d bad record(s); first: %s", path, len(out.skipped), out.skipped[0])
    out.renamed = _unique_ids(out.records, path)
    return out


def write_records(records: Sequence[Record | dict], path: str | os.PathLike) -> None:
    """Write records as JSONL (".jsonl") or a JSON array (other suffixes), replacing the file."""
    path = Path(path)
    rows = [r.to_dict() if isinstance(r, Record) else r for r in records]
    if path.suffix == ".jsonl":
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    else:
        text = json.dumps(rows, ensure_ascii=False, indent=1) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
