"""The `openai` backend against a real server: `transformers serve` on loopback, a fault-injecting
proxy in front of it, and a curation process killed with SIGKILL mid-stage and run again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from videorft.engine.config import load_config
from videorft.engine.curate.stage import curate

SAMPLES = 12


def write_config(path: Path, world: Path, out: Path, url: str, model: str, **reason) -> Path:
    """A curation recipe: world representation, reasoning by the server, no revision, filter."""
    cfg = {"run": {"output_dir": str(out), "progress": False, "device": "cpu"},
           "data": {"media_root": str(world)},
           "curate": {"input_file": str(world / "train.jsonl"), "output_dir": str(out), "max_samples": SAMPLES,
                      "stages": ["represent", "reason", "filter"],
                      "represent": {"backend": "world", "max_pixels": 12544},
                      "reason": {"backend": "openai", "base_url": [url], "model": model, "temperature": 0.0,
                                 "max_tokens": 12, "concurrency": 2, "timeout_s": 5.0, "retry_base_s": 0.01,
                                 **reason}}}
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_curate(config: Path, *overrides: str) -> dict:
    return curate(load_config(config, overrides))


@pytest.fixture(scope="module")
def reference(easy_world, lm_server, tmp_path_factory):
    """An unfaulted run straight against the server: its reason.jsonl is the expected output."""
    out = tmp_path_factory.mktemp("reference")
    stats = run_curate(write_config(out / "c.yaml", easy_world, out, lm_server["url"], lm_server["model"]))
    assert stats["stages"]["reason"]["requests"] == SAMPLES and stats["stages"]["reason"]["failures"] == 0
    return out


def test_faults_are_retried_and_the_records_match_an_unfaulted_run(easy_world, lm_server, reference, tmp_path,
                                                                   make_proxy):
    plan = ["429", "500", "stall", "malformed", "drop"]
    proxy = make_proxy(lm_server["url"], plan, retry_after_s=1, stall_s=6.0)
    stats = run_curate(write_config(tmp_path / "c.yaml", easy_world, tmp_path, proxy.url, lm_server["model"]))
    reason = stats["stages"]["reason"]
    assert reason["failures"] == 0 and reason["retries"] == len(plan)
    assert (tmp_path / "reason.jsonl").read_bytes() == (reference / "reason.jsonl").read_bytes()
    assert (tmp_path / "cot.jsonl").read_bytes() == (reference / "cot.jsonl").read_bytes()
    # the 429's request came back no sooner than its Retry-After, though the backoff alone is ~10 ms
    first = proxy.log[[e["fault"] for e in proxy.log].index("429")]
    again = next(e for e in proxy.log if e["digest"] == first["digest"] and e["t"] > first["t"])
    assert again["t"] - first["t"] >= 1.0
    # the API key never reaches the outputs
    assert "sk-test-secret" not in "".join(p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file())


def test_api_key_comes_from_the_environment_and_is_never_written(easy_world, lm_server, tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_TEST_KEY", "sk-test-secret")
    config = write_config(tmp_path / "c.yaml", easy_world, tmp_path, lm_server["url"], lm_server["model"],
                          api_key_env="CURATE_TEST_KEY")
    run_curate(config, "curate.max_samples=3")
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"sk-test-secret" not in written
    monkeypatch.delenv("CURATE_TEST_KEY")
    from videorft.engine.config_loader import ConfigError
    with pytest.raises(ConfigError, match="CURATE_TEST_KEY is not set"):
        run_curate(config, "curate.max_samples=3", f"curate.output_dir={tmp_path / 'other'}")


def _cached(out: Path, stage: str) -> int:
    db = sqlite3.connect(out / "cache" / "requests.sqlite")
    try:
        return db.execute("SELECT COUNT(*) FROM answers WHERE stage = ?", (stage,)).fetchone()[0]
    finally:
        db.close()


def test_sigkill_mid_stage_then_rerun(easy_world, lm_server, reference, tmp_path):
    """Killed with SIGKILL while reasoning; the rerun sends only the calls that had not finished,
    writes no duplicate line, and ends with the unfaulted run's outputs; a third run sends nothing."""
    config = write_config(tmp_path / "c.yaml", easy_world, tmp_path, lm_server["url"], lm_server["model"],
                          concurrency=1)
    cmd = [str(Path(sys.executable).parent / "videorft"), "curate", "--config", str(config)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = tmp_path / "reason.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if lines.is_file() and lines.read_text().count("\n") >= 4:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "curation ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = lines.read_text().count("\n")
    cached = _cached(tmp_path, "reason")
    assert 4 <= before < SAMPLES and cached >= before

    stats = run_curate(config)["stages"]["reason"]
    assert stats["requests"] == SAMPLES - cached            # no finished call repeated
    assert stats["cache_hits"] == cached - before            # answered but not yet written: from the cache
    ids = [json.loads(line)["id"] for line in lines.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == SAMPLES
    for name in ("represent.jsonl", "reason.jsonl", "cot.jsonl", "filter.jsonl"):
        assert (tmp_path / name).read_bytes() == (reference / name).read_bytes(), name

    again = run_curate(config)["stages"]
    assert all(s["requests"] == 0 and s["cache_hits"] == 0 for s in again.values())
