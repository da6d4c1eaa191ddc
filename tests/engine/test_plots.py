import json

from videorft.engine.plots import plot_run
from videorft.engine.report import format_table


def test_plots_are_written_from_metrics(tmp_path):
    rows = [{"step": s, "reward": 0.1 * s, "accuracy": 0.05 * s, "reward/format": 0.5,
             "time/rollout": 1.0, "time/update": 0.5} for s in range(1, 6)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    files = plot_run(tmp_path / "metrics.jsonl", tmp_path)
    assert [f.name for f in files] == ["rewards.png", "phases.png"]
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in files)


def test_report_table_formats_missing_values():
    table = format_table({"base": {"accuracy": 0.25}, "grpo": {"accuracy": 0.5, "format": 1.0}},
                         ["accuracy", "format"])
    lines = table.splitlines()
    assert lines[0].split() == ["stage", "accuracy", "format"]
    assert lines[2].split() == ["base", "0.250", "-"] and lines[3].split() == ["grpo", "0.500", "1.000"]
