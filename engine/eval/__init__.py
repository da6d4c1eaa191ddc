"""Evaluation: answer benchmark records with a checkpoint and score them with the rewards module.

    benchmarks.py   the registry of the six video benchmarks (and plain records): files, breakdowns
    reader.py       data.eval_file read and validated for a benchmark
    generate.py     completions of one rank's records (HF generate, or chunks handed to vLLM)
    predictions.py  predictions.jsonl: written as made, resumed, merged over ranks, rescored
    scoring.py      per-record scores and eval.json (metrics.score, score_task_mean, breakdown)
    aggregate.py    the benchmark-level means
    convert.py      `videorft convert-benchmark`: the benchmarks' own releases as records files
    stage.py        `videorft eval`
"""
