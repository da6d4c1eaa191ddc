"""`videorft report` over benchmark evaluations: checkpoints beside the paper's rows, breakdown
tables, results.json and the bar chart."""

import json
import shutil

import pytest

from videorft.engine.config import load_config
from videorft.engine.eval.benchmarks import PAPER_BENCHMARKS
from videorft.engine.report import run as report
from videorft.engine.report_benchmarks import paper_rows

SCORES = {"vsibench": 0.4, "videommmu": 0.5, "mmvu": 0.6, "mvbench": 0.7, "tempcompass": 0.8, "videomme": 0.3}


def _fake_checkpoint(root, released_mra=False):
    """Six eval.json files of a checkpoint scored at SCORES (one folder per benchmark)."""
    for name, score in SCORES.items():
        summary = {"benchmark": name, "metrics": {"score": score}, "count": 10, "records": 10,
                   "scoring": {"lenient_choice": False, "mra": "official"}}
        if name == "vsibench":
            summary["metrics"]["score_task_mean"] = 0.45
            summary["scoring"]["mra"] = "released-float32" if released_mra else "official"
        if name == "mvbench":
            summary["breakdown"] = {"by": "task", "scores": {"action_count": 0.9, "action_antonym": 0.5}}
        (root / name).mkdir(parents=True)
        (root / name / "eval.json").write_text(json.dumps(summary))
    return root


def _report(tmp_path, evaluations, *extra):
    cfg = load_config(None, [f"run.output_dir={tmp_path / 'report'}", f"report.output_file={tmp_path / 'results.json'}",
                             *extra])
    cfg.report.evaluations = {k: str(v) for k, v in evaluations.items()}
    return report(cfg)


def test_checkpoints_beside_the_paper(tmp_path, tiny_evaluations, capsys):
    tiny = tmp_path / "tiny"
    for name, run_dir in tiny_evaluations.items():
        shutil.copytree(run_dir, tiny / name)
    fake = _fake_checkpoint(tmp_path / "ckpt", released_mra=True)
    out = _report(tmp_path, {"tiny": tiny, "ckpt": fake})
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].split() == ["checkpoint", "VSI-Bench", "VideoMMMU", "MMVU", "MVBench", "TempCompass",
                                "VideoMME", "mean"]
    assert lines[3].split() == ["ckpt", "40.0", "50.0", "60.0", "70.0", "80.0", "30.0", "55.0"]
    assert lines[4].split()[:2] == ["Qwen2.5-VL-7B", "(paper)"]
    assert lines[6].split()[:2] == ["VideoRFT-7B", "(paper)"] and lines[6].split()[-1] == "58.7"     # 352.0 / 6
    assert "ckpt VSI-Bench: MRA in float32 as the released script computes it" in text
    assert "tiny VSI-Bench: 4 records scored, the release has 5130" in text
    vsi = lines[lines.index("VSI-Bench by question type") + 1:]
    assert vsi[0].split() == ["question", "type", "tiny", "ckpt"]
    assert vsi[3].startswith("score (official: mean of 8 tasks)") and vsi[3].split()[-1] == "45.0"
    mv = lines[lines.index("MVBench by task") + 1:]
    assert mv[2].split()[0] == "action_antonym" and mv[2].split()[-1] == "50.0"     # the benchmark's task order
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["unit"] == "percent" and "stages" not in results
    assert results["checkpoints"]["ckpt"]["mean"] == pytest.approx(55.0)
    tiny_scores = results["checkpoints"]["tiny"]["benchmarks"]
    assert set(tiny_scores) == set(PAPER_BENCHMARKS)
    expected = 100 * json.loads((tiny / "mmvu" / "eval.json").read_text())["metrics"]["score"]
    assert tiny_scores["mmvu"]["score"] == pytest.approx(expected)
    assert results["paper"]["VideoRFT-7B"]["vsibench"] == 36.8 and "2505.12434" in results["paper_source"]
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out["chart"].endswith(".png")


def test_partial_checkpoints_have_no_mean_and_a_checkpoint_folder_holds_one_run_per_benchmark(tmp_path, capsys):
    fake = _fake_checkpoint(tmp_path / "ckpt")
    shutil.rmtree(fake / "tempcompass")
    _report(tmp_path, {"ckpt": fake}, "report.paper_rows=[VideoRFT-3B]")
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split() == ["ckpt", "40.0", "50.0", "60.0", "70.0", "-", "30.0", "-"]
    assert lines[3].split()[:2] == ["VideoRFT-3B", "(paper)"] and len(lines[1].split()) == 8
    shutil.copytree(fake / "mmvu", fake / "mmvu-again")
    with pytest.raises(ValueError, match="two evaluations of mmvu"):
        _report(tmp_path, {"ckpt": fake})
    with pytest.raises(ValueError, match=r"report.paper_rows: \['GPT-5'\]"):
        paper_rows(["GPT-5"])
