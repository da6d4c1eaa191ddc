"""Read and write records in the VideoRFT / Video-R1 schema (JSON arrays or JSONL).

    {"problem_id": 2, "problem": "...", "problem_type": "multiple choice", "data_type": "video",
     "path": "./videos/x.mp4", "options": ["A. ...", "B. ..."], "process": "<think>...</think>",
     "solution": "<answer>A</answer>", "data_source": "..."}

Every media path resolves under one media root (`./x.mp4` -> media_root/x.mp4) for the policy,
SFT and the rewards alike. A malformed record is an error naming the file, the line and the
field, or, with on_bad_record="skip", is left out and counted. Keys outside the schema are
kept in `Record.extra` so files round-trip.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

from videorft.loaders.schema import DATA_TYPES, PROBLEM_TYPES

log = logging.getLogger("videorft")

SCHEMA_KEYS = ("problem_id", "problem", "problem_type", "data_type", "path", "options", "process", "solution",
               "data_source")
"""Record keys in the order they are written."""
_ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)


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


def parse_record(data: Any, where: str, require_process: bool = False) -> Record:
    """Validate one decoded JSON value as a record; errors start with `where` and name the field."""
    if not isinstance(data, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(data).__name__}")
    pid = data.get("problem_id")
    if pid is None or isinstance(pid, bool) or not isinstance(pid, (str, int)):
        raise RecordError(f"{where}: problem_id: missing or not a string/integer")
    kind = _need_str(data, "problem_type", where)
    if kind not in PROBLEM_TYPES:
        raise RecordError(f"{where}: problem_type: {kind!r} is not one of {list(PROBLEM_TYPES)}")
    media = _need_str(data, "data_type", where)
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
    return record


def _json_items(text: str, name: str) -> Iterator[tuple[int, Any]]:
    """(line, value) for each element of a top-level JSON array, with the line it starts on."""
    decoder = json.JSONDecoder()
    pos = len(text) - len(text.lstrip())
    if not text[pos:pos + 1] == "[":
        raise RecordError(f"{name}:1: expected a JSON array of records (or use .jsonl)")
    pos += 1
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


def read_records(path: str | os.PathLike, on_bad_record: Literal["error", "skip"] = "error",
                 max_samples: int | None = None, require_process: bool = False) -> RecordSet:
    """Records of a .json (array) or .jsonl file, validated field by field.

    on_bad_record "error" raises RecordError at the first bad record ("file:line: field: ...");
    "skip" leaves bad records out, counts them in RecordSet.skipped and logs a summary.
    require_process: the `process` field must hold <think> reasoning (SFT data).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"record file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    items = _jsonl_items(text, str(path)) if path.suffix == ".jsonl" else _json_items(text, str(path))
    out = RecordSet(records=[])
    for line, value in items:
        if max_samples is not None and len(out.records) >= max_samples:
            break
        try:
            if isinstance(value, RecordError):
                raise value
            out.records.append(parse_record(value, f"{path}:{line}", require_process))
        except RecordError as err:
            if on_bad_record != "skip":
                raise
            out.skipped.append(str(err))
    if out.skipped:
        log.warning("%s: skipped %d bad record(s); first: %s", path, len(out.skipped), out.skipped[0])
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
