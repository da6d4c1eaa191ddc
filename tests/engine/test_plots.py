import json

import numpy as np
from PIL import Image

from videorft.engine.plots import moving_average, plot_run, reward_curves, step_seconds
from videorft.engine.report import format_table

SERIES = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
"""matplotlib's first four cycle colours: the curves in drawing order."""


def pixels_of(png, colour: str) -> int:
    """How many pixels of the image are within 8 levels of `colour` ("#rrggbb") in every channel."""
    rgb = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)             # [H, W, 3]
    want = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(rgb - want).max(axis=-1) <= 8).sum())


def test_plots_are_written_from_metrics(tmp_path):
    rows = [{"step": s, "reward": 0.1 * s, "accuracy": 0.05 * s, "reward/accuracy": 0.05 * s, "reward/format": 0.5,
             "time/rollout": 1.0, "time/update": 0.5, "tokens_per_s": 100.0 + s} for s in range(1, 6)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    files = plot_run(tmp_path / "metrics.jsonl", tmp_path)
    assert [f.name for f in files] == ["rewards.png", "phases.png"]
    assert [Image.open(f).size for f in files] == [(770, 440), (1430, 396)]      # 7x4 and 13x3.6 in at 110 dpi
    # three reward curves (legend samples alone are ~100 pixels each), and no fourth
    assert [pixels_of(files[0], c) > 300 for c in SERIES] == [True, True, True, False]
    # phases: the bars (blue), seconds per step (orange) and throughput (green)
    assert [pixels_of(files[1], c) > 300 for c in SERIES] == [True, True, True, False]
    curves = reward_curves(rows)
    assert list(curves) == ["reward", "reward/accuracy", "reward/format"]     # accuracy drawn once
    assert step_seconds(rows) == ([1, 2, 3, 4, 5], [1.5] * 5)


def test_moving_average_is_a_trailing_mean():
    assert moving_average([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert moving_average([2.0, 4.0], 1) == [2.0, 4.0]


def test_report_table_formats_missing_values():
    table = format_table({"base": {"accuracy": 0.25}, "grpo": {"accuracy": 0.5, "format": 1.0}},
                         ["accuracy", "format"])
    lines = table.splitlines()
    assert lines[0].split() == ["stage", "accuracy", "format"]
    assert lines[2].split() == ["base", "0.250", "-"] and lines[3].split() == ["grpo", "0.500", "1.000"]


def test_report_stage_combines_evaluations(tmp_path, capsys):
    import pytest

    from videorft.engine.config import load_config
    from videorft.engine.report import run

    for label, acc in (("sft", 0.25), ("grpo", 0.5)):
        (tmp_path / label).mkdir()
        (tmp_path / label / "eval.json").write_text(json.dumps({"metrics": {"accuracy": acc, "format": 1.0},
                                                                "by_source": {"w/colour": acc, "w/motion": 0.5}}))
    cfg = load_config(None, [f"run.output_dir={tmp_path / 'report'}", f"report.output_file={tmp_path / 'r.json'}",
                             "run.progress=false"])
    cfg.report.evaluations = {"sft": str(tmp_path / "sft"), "grpo": str(tmp_path / "grpo")}
    run(cfg)
    assert json.loads((tmp_path / "r.json").read_text()) == {"stages": {
        "sft": {"accuracy": 0.25, "format": 1.0, "by_source": {"w/colour": 0.25, "w/motion": 0.5}},
        "grpo": {"accuracy": 0.5, "format": 1.0, "by_source": {"w/colour": 0.5, "w/motion": 0.5}}}}
    out = capsys.readouterr().out.splitlines()
    assert out[2].split()[:3] == ["sft", "0.250", "1.000"] and out[3].split()[:3] == ["grpo", "0.500", "1.000"]
    by_kind = out[out.index("accuracy by data source") + 1:]
    assert by_kind[0].split() == ["stage", "w/colour", "w/motion"]
    assert by_kind[2].split() == ["sft", "0.250", "0.500"] and by_kind[3].split() == ["grpo", "0.500", "0.500"]
    cfg.report.evaluations = {"base": str(tmp_path / "missing")}
    with pytest.raises(FileNotFoundError, match="report.evaluations.base"):
        run(cfg)
