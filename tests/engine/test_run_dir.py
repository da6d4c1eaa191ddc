import json

from videorft.engine.backends import resolve_backends
from videorft.engine.config import load_config
from videorft.engine.run_dir import RunDir
from videorft.loaders.packages import has_package


def test_run_dir_writes_config_backends_metrics_and_events(tmp_path, capsys):
    cfg = load_config(None, [f"run.output_dir={tmp_path / 'run'}", "run.device=cpu", "run.progress=true"])
    run = RunDir(cfg, "test")
    run.record_backends(resolve_backends(cfg).as_dict())
    run.metrics.write(1, {"loss": 0.5, "reward": 1.25, "bad": float("nan")})
    run.metrics.write(2, {"loss": 0.25})
    capsys.readouterr()
    assert list(run.progress(range(3), total=3)) == [0, 1, 2]
    bar = capsys.readouterr().err
    assert "test:" in bar and "0/3" in bar                    # tqdm drew the bar, labelled with the stage
    run.close()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{"step": 1, "loss": 0.5, "reward": 1.25, "bad": None}, {"step": 2, "loss": 0.25}]
    backends = json.loads((tmp_path / "run" / "backends.json").read_text())
    video_preprocess = "native" if has_package("videorft._native") else "torch"
    assert backends == {"device": "cpu", "kernels": "torch", "rollout": "hf", "attention": "sdpa",
                        "video_decoder": "pyav", "video_decoder_fallback": None, "video_preprocess": video_preprocess}
    assert any((tmp_path / "run" / "tb").iterdir())
    assert "backend kernels = torch" in (tmp_path / "run" / "run.log").read_text()


def test_resume_at_drops_rows_written_after_the_checkpoint(tmp_path, capsys):
    cfg = load_config(None, [f"run.output_dir={tmp_path / 'run'}", "run.device=cpu", "run.tensorboard=false",
                             "run.progress=false"])
    first = RunDir(cfg, "test")
    capsys.readouterr()
    assert list(first.progress(range(3), total=3)) == [0, 1, 2]
    assert "test:" not in capsys.readouterr().err             # run.progress off: no bar
    for step in (1, 2, 3, 4):
        first.metrics.write(step, {"loss": float(step)})
    first.close()
    with open(tmp_path / "run" / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "lo')                     # a row cut short by a kill
    again = RunDir(cfg, "test")
    again.resume_at(2)
    again.metrics.write(3, {"loss": 30.0})
    again.close()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 2.0}, {"step": 3, "loss": 30.0}]
