"""The run directory: one folder per run holding everything needed to read or resume it.

    <output_dir>/config.yaml     resolved config (after recipe + overrides)
    <output_dir>/backends.json   resolved "auto" choices (device, kernels, rollout, decoder, ...)
    <output_dir>/run.log         the log of every rank-0 message
    <output_dir>/metrics.jsonl   one JSON object per logged step
    <output_dir>/tb/             TensorBoard event files
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar

from videorft.engine.config import RunConfig
from videorft.engine.config_loader import dump_yaml

T = TypeVar("T")
log = logging.getLogger("videorft")


def is_main_process() -> bool:
    """True on global rank 0 (or when not launched distributed)."""
    return int(os.environ.get("RANK", "0")) == 0


def setup_logging(log_file: Path | None = None, level: int = logging.INFO) -> None:
    """Console logging for the `videorft` logger, plus `log_file` when given (rank 0 only)."""
    log.setLevel(level)
    log.propagate = False
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    if not any(getattr(h, "_videorft_console", False) for h in log.handlers):
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(fmt)
        console._videorft_console = True  # type: ignore[attr-defined]
        log.addHandler(console)
    if log_file is not None and is_main_process():
        for handler in [h for h in log.handlers if isinstance(h, logging.FileHandler)]:
            log.removeHandler(handler)
            handler.close()
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(fmt)
        log.addHandler(file_handler)


class MetricsWriter:
    """Appends one JSON object per step to metrics.jsonl and mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, resume_step: int | None = None):
        self.path = run_dir / "metrics.jsonl"
        if resume_step is not None:
            _drop_rows_after(self.path, resume_step)
        self._file = open(self.path, "a", encoding="utf-8")
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step hides the events an interrupted run wrote after its last checkpoint
            purge = resume_step + 1 if resume_step is not None else None
            self._tb = SummaryWriter(log_dir=str(run_dir / "tb"), purge_step=purge)

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        """Record `metrics` for `step`; non-finite floats are written as null in JSON."""
        row = {"step": step}
        for key, value in metrics.items():
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            row[key] = value
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        """Flush and close both sinks."""
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _drop_rows_after(path: Path, step: int) -> None:
    """Rewrite metrics.jsonl without the rows past `step` (atomically; a torn last line goes too)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue                                   # a line cut short by the kill
        if row.get("step", 0) <= step:
            kept.append(line + "\n")
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    os.replace(tmp, path)


class RunDir:
    """Creates the run folder, writes the resolved config and opens the log and metrics sinks."""

    def __init__(self, cfg: RunConfig, stage: str):
        self.cfg = cfg
        self.stage = stage
        self.path = Path(cfg.run.output_dir)
        self.path.mkdir(parents=True, exist_ok=True)
        self._metrics: MetricsWriter | None = None
        self._resume_step: int | None = None
        if is_main_process():
            dump_yaml(cfg, self.path / "config.yaml")
        setup_logging(self.path / "run.log")
        log.info("%s run %r in %s", stage, cfg.run.name, self.path)

    @property
    def metrics(self) -> MetricsWriter:
        """The metrics sink (opened on first use, rank 0 only)."""
        if self._metrics is None:
            if not is_main_process():
                raise RuntimeError("metrics are written by rank 0 only")
            self._metrics = MetricsWriter(self.path, tensorboard=self.cfg.run.tensorboard,
                                          resume_step=self._resume_step)
        return self._metrics

    def resume_at(self, step: int) -> None:
        """Continue the records of an interrupted run from its checkpoint at `step`.

        Rows and TensorBoard events that the run wrote after that checkpoint are dropped when the
        metrics sink opens, so the resumed run's metrics match an uninterrupted run's, with no step
        written twice.
        """
        if self._metrics is not None:
            raise RuntimeError("resume_at must be called before the first metrics are written")
        self._resume_step = step

    def record_backends(self, backends: dict[str, str]) -> None:
        """Log the resolved backend choices and write them to backends.json."""
        for key, value in backends.items():
            log.info("backend %s = %s", key, value)
        if is_main_process():
            (self.path / "backends.json").write_text(json.dumps(backends, indent=2) + "\n", encoding="utf-8")

    def progress(self, iterable: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
        """A progress bar over `iterable` on rank 0 when `run.progress` is on."""
        if not (self.cfg.run.progress and is_main_process()):
            yield from iterable
            return
        from tqdm.auto import tqdm

        yield from tqdm(iterable, total=total, desc=desc or self.stage, dynamic_ncols=True, leave=False)

    def close(self) -> None:
        """Close the metrics sinks."""
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
