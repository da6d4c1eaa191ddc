"""`make gpu-check`: what the engine does on the machine at hand, in one command and one table.

On a CUDA machine it runs every `gpu`-marked test, the fused lm_head benchmarks at the real
shapes (H=3584, V=151,936, N=4k and 16k, bf16; ours, naive torch, Liger), and a 5-step tiny GRPO
run with phase timings (plain, and under ZeRO-3; vLLM rollouts, flash-attn varlen attention and
DALI decoding where they are installed). Results go under bench/results/<hardware>/ as
pytest-benchmark JSON plus gpu-check-<date>.json, and one summary table is printed. On a CPU it
runs what it can (the gpu tests skip, the benchmarks take their CPU shapes), keeps its files under
runs/gpu-check/, and says what it did not run.

It is built for the lent GPU machines, whose image has its own CUDA PyTorch, Triton and an older
transformers, no package index, and none of vLLM, flash-attn, DALI, DeepSpeed or Liger: when
`videorft` is not importable it installs the checkout without dependencies, plus the wheels
`make gpu-wheels` put in .whl/ (carried with the working tree). Whatever is still missing is
skipped and named.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = {"vllm": "vLLM rollouts", "flash_attn": "flash-attn varlen attention", "nvidia.dali": "DALI decoding",
            "deepspeed": "ZeRO-3", "liger_kernel": "Liger baseline"}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def ensure_installed() -> None:
    """Install the checkout (no dependencies) and the carried wheels when `videorft` is missing."""
    if installed("videorft.engine"):
        return
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    wheels = sorted((ROOT / ".whl").glob("*.whl"))
    if wheels:
        subprocess.run(pip + [str(w) for w in wheels], check=True)
    env = {**os.environ, "VIDEORFT_BUILD_NATIVE": "0"}
    subprocess.run(pip + ["--no-build-isolation", "-e", str(ROOT)], check=True, env=env)


def hardware_name() -> tuple[str, str]:
    """(device name, folder name under bench/results)."""
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        return name, re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return "cpu", f"cpu-{os.cpu_count()}core"


def run(cmd: list[str], log: Path, env: dict | None = None, timeout: int = 600) -> tuple[int, float]:
    """Run `cmd` from the checkout with its output in `log`; returns (exit status, seconds)."""
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as sink:
        try:
            rc = subprocess.run(cmd, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, timeout=timeout,
                                env={**os.environ, **(env or {})}).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    return rc, time.perf_counter() - started


def gpu_tests(work: Path) -> dict:
    """Every `gpu`-marked test: counts, and the failures and skips by name."""
    report = work / "gpu-tests.xml"
    rc, seconds = run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "tests", f"--junitxml={report}"],
                      work / "gpu-tests.log", timeout=420)
    out = {"exit": rc, "seconds": round(seconds, 1), "passed": 0, "failed": [], "skipped": []}
    if not report.is_file():
        return out
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            out["failed"].append(name)
        elif (skip := case.find("skipped")) is not None:
            out["skipped"].append(f"{name} ({skip.get('message', '')[:80]})")
        else:
            out["passed"] += 1
    return out


def kernel_benchmarks(results: Path, work: Path, date: str) -> dict:
    """The fused lm_head suites; pytest-benchmark JSON per suite under `results`."""
    rows, status = [], {}
    for suite in ("linear_logprob", "grpo_loss"):
        path = results / f"{suite}-{date}.json"
        rc, seconds = run([sys.executable, "-m", "pytest", "-q", f"bench/bench_{suite}.py", "-p", "no:cacheprovider",
                           f"--benchmark-json={path}"], work / f"bench-{suite}.log", timeout=600)
        status[suite] = {"exit": rc, "seconds": round(seconds, 1)}
        if path.is_file():
            for bench in json.loads(path.read_text())["benchmarks"]:
                info = bench["extra_info"]
                rows.append({"suite": suite, "provider": info.get("provider"), "shape": info.get("shape", {}),
                             "ms": bench["stats"]["median"] * 1e3, "tflops": info.get("tflops"),
                             "peak_mem_mib": info.get("peak_mem_mib")})
    return {"status": status, "rows": rows}


def tiny_grpo(work: Path, steps: int, cuda: bool) -> dict:
    """A 5-step GRPO run of a tiny model on a tiny world, per variant, with mean phase seconds."""
    cli = [sys.executable, "-m", "videorft.engine.cli"]
    device, dtype = ("cuda", "bfloat16") if cuda else ("cpu", "float32")
    common = [f"run.device={device}", "run.progress=false"]
    world, base = work / "world", work / "base"
    setup = [(["synth", "--config", "recipes/tiny/synth.yaml", f"run.output_dir={work / 'synth'}",
               f"synth.output_dir={world}", "synth.num_train=32", "synth.num_test=8"], "synth"),
             (["init-model", "--config", "recipes/tiny/base.yaml", f"run.output_dir={base}",
               f"model.dtype={dtype}"], "init-model")]
    for args, name in setup:
        rc, _ = run(cli + args + common, work / f"{name}.log")
        if rc:
            return {"error": f"{name} failed (exit {rc}); see {work / (name + '.log')}"}
    from videorft.engine.config import EncoderTrainConfig
    from videorft.engine.encoder import write_untrained_encoder

    encoder = write_untrained_encoder(work / "encoder", EncoderTrainConfig(image_size=32, patch_size=8))
    variants = {"plain": []}
    if cuda and installed("deepspeed"):
        variants["zero3"] = ["distributed.zero_stage=3"]
    out = {}
    for name, extra in variants.items():
        run_dir = work / f"grpo-{name}"
        args = ["grpo", "--config", "recipes/tiny/grpo.yaml", f"run.output_dir={run_dir}", f"model.path={base}",
                f"model.dtype={dtype}", f"data.train_file={world / 'train.jsonl'}", f"data.media_root={world}",
                f"rewards.semantic.encoder_path={encoder}", f"grpo.steps={steps}", f"grpo.save_every={steps}",
                "kernels.backend=auto", "rollout.backend=auto", "model.attention=auto", "video.backend=auto",
                "video.preprocess=auto", *common, *extra]
        rc, seconds = run(cli + args, work / f"grpo-{name}.log", timeout=480)
        metrics = run_dir / "metrics.jsonl"
        rows = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.is_file() else []
        backends = run_dir / "backends.json"
        out[name] = {"exit": rc, "seconds": round(seconds, 1), "steps": len(rows),
                     "backends": json.loads(backends.read_text()) if backends.is_file() else {},
                     "phase_s": _mean_phases(rows[1:] or rows)}       # step 1 pays compilation
    return out


def _mean_phases(rows: list[dict]) -> dict:
    keys = sorted({k for r in rows for k in r if k.startswith("time/")})
    return {k[5:]: round(sum(r.get(k, 0.0) for r in rows) / len(rows), 4) for k in keys} if rows else {}


def print_summary(summary: dict) -> None:
    print(f"\ngpu-check on {summary['device']}  ({summary['versions']})")
    t = summary["tests"]
    print(f"\ngpu-marked tests: {t['passed']} passed, {len(t['failed'])} failed, {len(t['skipped'])} skipped "
          f"({t['seconds']} s)")
    for name in t["failed"]:
        print(f"  FAILED  {name}")
    print("\nfused lm_head kernels (median)")
    print(f"  {'suite':15} {'provider':8} {'mode':17} {'N':>6} {'ms':>10} {'TFLOP/s':>8} {'peak MiB':>9}")
    for r in summary["kernels"]["rows"]:
        s = r["shape"]
        tflops = f"{r['tflops']:.3g}" if r["tflops"] else "-"
        peak = f"{r['peak_mem_mib']:.0f}" if r["peak_mem_mib"] is not None else "-"
        print(f"  {r['suite']:15} {r['provider']:8} {s.get('mode', ''):17} {s.get('N', ''):>6} {r['ms']:>10.2f} "
              f"{tflops:>8} {peak:>9}")
    print("\ntiny GRPO (mean seconds per step after the first)")
    for name, g in summary["grpo"].items():
        if not isinstance(g, dict) or "phase_s" not in g:
            print(f"  {name}: {g}")
            continue
        phases = "  ".join(f"{k} {v:.3f}" for k, v in g["phase_s"].items())
        state = "ok" if g["exit"] == 0 else f"exit {g['exit']}"
        print(f"  {name:6} {state:7} {g['steps']} steps  {phases}")
        print(f"         backends: {g['backends']}")
    print("\nnot run here:")
    for item in summary["not_run"]:
        print(f"  - {item}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="GRPO steps of the tiny run")
    parser.add_argument("--only", choices=("tests", "kernels", "grpo"), action="append",
                        help="run only these parts (default: all)")
    args = parser.parse_args(argv)
    ensure_installed()
    import torch

    device, folder = hardware_name()
    date = datetime.date.today().strftime("%Y%m%d")
    work = ROOT / "runs" / "gpu-check"
    # CUDA results are the record of that GPU; a CPU run's stay out of bench/results (its CPU
    # baselines are recorded deliberately, with one thread, by the bench suites themselves)
    results = ROOT / "bench" / "results" / folder if torch.cuda.is_available() else work / "results"
    results.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    import transformers
    import triton

    versions = f"torch {torch.__version__}, triton {triton.__version__}, transformers {transformers.__version__}"
    parts = set(args.only or ("tests", "kernels", "grpo"))
    cuda = torch.cuda.is_available()
    summary = {"device": device, "versions": versions, "date": date,
               "tests": gpu_tests(work) if "tests" in parts else {"passed": 0, "failed": [], "skipped": [],
                                                                 "seconds": 0},
               "kernels": kernel_benchmarks(results, work, date) if "kernels" in parts else {"rows": []},
               "grpo": tiny_grpo(work, args.steps, cuda) if "grpo" in parts else {}}
    summary["not_run"] = [f"{what}: {module} is not installed" for module, what in OPTIONAL.items()
                          if not installed(module)]
    if not cuda:
        summary["not_run"].insert(0, "everything CUDA-only: no CUDA device (gpu tests skip, CPU benchmark shapes)")
    summary["host"] = platform.node()
    (results / f"gpu-check-{date}.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print_summary(summary)
    failed = summary["tests"]["failed"] or any(s["exit"] for s in summary["kernels"].get("status", {}).values()) \
        or any(isinstance(g, dict) and g.get("exit") for g in summary["grpo"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
