"""How close `harness plan`'s predictions come to what a compare then measures: each cell's peak memory
(process RSS on a CPU: the larger of the record's adapt.peak_mem_bytes and eval_peak_mem_bytes) and its
wall time (adapt.wall_s, eval_wall_s), for every default strategy on both real models.

    python benchmarks/plan_accuracy.py [--models smollm2-135m-instruct,gemma-3-270m] [--limit 6]
                                       [--gemma-steps N] [--threads 1] [--out benchmarks/results]
                                       [--strategies a,b: re-run those cells, merged into --out's results]

Each model runs in its own process (`OMP_NUM_THREADS=--threads`): first `harness.api.plan` (the
prediction, before anything runs), then `harness.compare` on legal-qa with the same configuration
(retention off: it is outside the phases compared; cells go to a fresh temporary folder, so nothing
is reused). Training keeps the default CPU cap of 24 steps (`--gemma-steps` lowers Gemma's). The plan
predicts the peak of the worst step: the longest batch once the optimizer states exist. The trainer's
length-grouped sampler runs the longest batch first, before the first optimizer step creates those
states, so a training shorter than one epoch may never reach it (Gemma capped at 8 steps peaked 17%
below its plan); 24 steps on legal-qa's 184 training rows start a second epoch, whose first batch is
the longest again. benchmarks/memory_timeline.py measures the peak at the planned shape directly. The
machine's load is sampled throughout and written with the results: on a shared machine wall time
moves with it, so the process CPU time of each phase (the record's work.adapt_cpu_s, eval_cpu_s) is
compared too; with one torch thread it is the wall time the phase would take on an idle core.

Writes <out>/plan_accuracy.json and plan_accuracy.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

STRATEGIES = ["zero-shot", "few-shot", "rag", "lora", "qlora", "dora", "full-ft"]
WEIGHTS = ("lora", "qlora", "dora", "full-ft")
MEMORY_TARGET, TIME_TARGET = 0.20, 0.50


def config(model: str, limit: int, steps: int | None, out: str, strategies: list[str]) -> dict[str, Any]:
    options = {w: {"cpu_max_steps": steps} for w in WEIGHTS if w in strategies} if steps else {}
    return {"suite": "legal-qa", "model": model, "strategies": strategies, "limit": limit, "retention": False,
            "out": out, "options": options}


def measured(rec: Any) -> dict[str, Any]:
    a, w = rec.adapt, rec.work or {}
    peaks = [x for x in ((a.peak_mem_bytes if a else 0), rec.eval_peak_mem_bytes or 0) if x]
    return {"status": rec.status, "error": rec.error, "peak_gb": max(peaks, default=0) / 1e9,
            "adapt_peak_gb": (a.peak_mem_bytes if a else 0) / 1e9, "eval_peak_gb": (rec.eval_peak_mem_bytes or 0) / 1e9,
            "adapt_s": a.wall_s if a else 0.0, "eval_s": rec.eval_wall_s or 0.0,
            "adapt_cpu_s": w.get("adapt_cpu_s"), "eval_cpu_s": w.get("eval_cpu_s"),
            "steps": a.budget.steps if a and a.budget else 0, "train_tokens": a.train_tokens if a else 0}


def cpu_peak_flops(seconds: float = 0.7, dtype: str | None = None) -> float:
    """The matmul throughput harness.model.throughput measures (1024 x 1024, in `dtype`, by default the CPU's
    compute precision), timed by this process's CPU time instead of the clock: what the threads get when
    they run, whatever else the machine runs."""
    import torch

    from harness.core.precision import compute_dtype

    n, kind = 1024, getattr(torch, dtype or compute_dtype("cpu"))
    a, b = torch.randn(n, n, dtype=kind), torch.randn(n, n, dtype=kind)
    best = 0.0
    for _ in range(5):
        c0, runs = time.process_time(), 0
        while time.process_time() - c0 < seconds:
            a @ b
            runs += 1
        best = max(best, 2 * n**3 * runs / (time.process_time() - c0))
    return best / torch.get_num_threads()


def run_compare(api: Any, cfg: dict[str, Any], cells: Path, attempts: int = 3) -> tuple[dict[str, Any], list[str]]:
    """harness.compare, again (finished cells are reused) while a strategy has no record: a failure outside
    the cells (e.g. writing the report) stops a compare, not the cells already on disk."""
    from harness.core.records import CellRecord, from_json

    failures: list[str] = []
    records: dict[str, Any] = {}
    for _ in range(attempts):
        try:
            api.compare(cfg)
        except Exception as e:
            failures.append(f"{type(e).__name__}: {str(e)[:300]}")
        for f in sorted(cells.glob("*.json"), key=lambda f: f.stat().st_mtime):
            rec = from_json(CellRecord, f.read_bytes())
            records[rec.strategy] = rec
        if all(s in records for s in STRATEGIES):
            break
    return records, failures


def worker(model: str, limit: int, steps: int | None, strategies: list[str]) -> dict[str, Any]:
    """In this process: plan (before anything runs), then run the compare; both as dicts. The compare's
    cells (a full fine-tune's artifact is 0.5 to 1 GB) are removed after."""
    with tempfile.TemporaryDirectory(prefix="plan-accuracy-") as out:
        return _worker(model, limit, steps, strategies, out)


def _worker(model: str, limit: int, steps: int | None, strategies: list[str], out: str) -> dict[str, Any]:
    import torch

    import harness.api as api
    from harness.model.plan import plan_cells
    from harness.model.throughput import flops_per_second
    from harness.run.setup import prepare

    cfg = config(model, limit, steps, out, strategies)
    t0 = time.perf_counter()
    rows = api.plan(cfg)  # what `harness plan` prints: at the throughput measured by the clock, load included
    plan_s = time.perf_counter() - t0
    cpu_peak = cpu_peak_flops() * torch.get_num_threads()
    ready = prepare(api._config(cfg), lambda *a, **k: None)
    idle = {r.strategy: r for r in plan_cells(ready.plan, ready.registry, "cpu", flops_per_s=cpu_peak)}
    t0 = time.perf_counter()
    records, failures = run_compare(api, cfg, Path(out) / "legal-qa" / "cells")
    cells = []
    for r in rows:
        t = idle[r.strategy].time
        predicted = {**r.as_dict(), "idle_adapt_s": t and t.adapt_s, "idle_eval_s": t and t.eval_s}
        cells.append({"predicted": predicted, "measured": measured(records[r.strategy]) if r.strategy in records
                      else None})
    return {"model": model, "limit": limit, "cpu_max_steps": steps or 24, "plan_s": round(plan_s, 2),
            "compare_s": round(time.perf_counter() - t0, 1), "compare_failures": failures,
            "torch_threads": torch.get_num_threads(), "flops_per_s_clock": flops_per_second("cpu"),
            "flops_per_s_cpu_time": cpu_peak, "cells": cells}


def fresh_cache() -> str:
    """A harness cache of its own (RAG indexes built cold, throughput measured now) that shares the converted
    models and assembled GGUF files of the user's cache (as tests/conftest.py does)."""
    from harness.core.cache import cache_root

    root = Path(tempfile.mkdtemp(prefix="plan-accuracy-cache-"))
    for name in ("models", "gguf"):
        (cache_root() / name).mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(cache_root() / name, target_is_directory=True)
    return str(root)


class LoadSampler:
    """The 1-minute load average, every 20 s, while the workers run."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(20):
            self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        s = self.samples or [os.getloadavg()[0]]
        return {"mean": round(sum(s) / len(s), 2), "min": round(min(s), 2), "max": round(max(s), 2), "n": len(s)}


def error(pred: float | None, meas: float | None) -> float | None:
    """Relative error of a prediction: (predicted - measured) / measured."""
    if pred is None or not meas:
        return None
    return (pred - meas) / meas


def compared(cell: dict[str, Any]) -> dict[str, Any]:
    p, m = cell["predicted"], cell["measured"]
    pred_total = None if p["adapt_s"] is None else p["adapt_s"] + p["eval_s"]
    idle_total = None if p["idle_adapt_s"] is None else p["idle_adapt_s"] + p["idle_eval_s"]
    cpu = None if m["adapt_cpu_s"] is None else m["adapt_cpu_s"] + m["eval_cpu_s"]
    return {"strategy": p["strategy"], "model": p["model"], "trainable": p["trainable_params"],
            "pred_peak_gb": p["peak_gb"], "peak_gb": round(m["peak_gb"], 3),
            "mem_err": error(p["peak_gb"], m["peak_gb"]),
            "pred_s": pred_total, "wall_s": round(m["adapt_s"] + m["eval_s"], 1), "cpu_s": cpu and round(cpu, 1),
            "time_err": error(pred_total, m["adapt_s"] + m["eval_s"]), "idle_s": idle_total,
            "cpu_time_err": error(idle_total, cpu), "idle_adapt_s": p["idle_adapt_s"], "idle_eval_s": p["idle_eval_s"],
            "adapt_cpu_s": m["adapt_cpu_s"], "eval_cpu_s": m["eval_cpu_s"],
            "pred_adapt_s": p["adapt_s"], "adapt_s": round(m["adapt_s"], 1), "pred_eval_s": p["eval_s"],
            "eval_s": round(m["eval_s"], 1), "steps": m["steps"], "pred_steps": p["train_steps"],
            "largest_term": max(p["breakdown_gb"].items(), key=lambda kv: kv[1])[0], "breakdown_gb": p["breakdown_gb"]}


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:+.0f}%"


def within(rows: list[dict[str, Any]], key: str, target: float) -> str:
    errs = [r[key] for r in rows if r[key] is not None]
    return f"{sum(abs(e) <= target for e in errs)} of {len(errs)}"


def markdown(result: dict[str, Any]) -> str:
    rows, runs = result["rows"], result["runs"]
    clock = ", ".join(f"{r['model']} {r['flops_per_s_clock'] / 1e9:.0f}" for r in runs)
    cpu = ", ".join(f"{r['model']} {r['flops_per_s_cpu_time'] / 1e9:.0f}" for r in runs)
    lines = [
        f"Machine: {result['machine']}; torch threads {result['torch_threads']}; load average while running "
        f"{result['load']['mean']} (min {result['load']['min']}, max {result['load']['max']}) on {os.cpu_count()} "
        f"cores: other jobs shared the machine. Suite legal-qa, limit {result['limit']} test items per task, "
        f"retention off, a fresh cache (RAG index built cold; converted models shared); training at the default "
        f"CPU cap (24 steps){'' if 'default' in result['gemma_note'] else ' except ' + result['gemma_note']}.",
        "", f"Command: `{result['command']}`", "",
        f"Memory (peak RSS of the cell, adapt or eval) within {MEMORY_TARGET:.0%}: "
        f"{within(rows, 'mem_err', MEMORY_TARGET)} cells. Time (adapt + eval) within {TIME_TARGET:.0%}: "
        f"{within(rows, 'time_err', TIME_TARGET)} as `harness plan` predicts it here (at the throughput measured by "
        f"the clock under this load, GFLOP/s: {clock}) against wall time; {within(rows, 'cpu_time_err', TIME_TARGET)}"
        f" at the throughput one thread gets when it runs (timed by CPU time, GFLOP/s: {cpu}) against the "
        f"process CPU time of each phase (one thread: the wall time on an idle core).",
        "", "| model | strategy | peak GB predicted | measured | error | largest predicted term | time s predicted "
        "(adapt + eval) | wall | error | idle-core s predicted | CPU s | error |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        pred = "–" if r["pred_s"] is None else f"{r['pred_s']:.0f} ({r['pred_adapt_s']:.0f} + {r['pred_eval_s']:.0f})"
        idle = "–" if r["idle_s"] is None else f"{r['idle_s']:.0f} ({r['idle_adapt_s']:.0f} + {r['idle_eval_s']:.0f})"
        cpu_s = "–" if r["cpu_s"] is None else f"{r['cpu_s']:.0f} ({r['adapt_cpu_s']:.0f} + {r['eval_cpu_s']:.0f})"
        lines.append(f"| {r['model']} | {r['strategy']} | {r['pred_peak_gb']:.2f} | {r['peak_gb']:.2f} | "
                     f"{pct(r['mem_err'])} | {r['largest_term']} | {pred} | {r['wall_s']:.0f} ({r['adapt_s']:.0f} + "
                     f"{r['eval_s']:.0f}) | {pct(r['time_err'])} | {idle} | {cpu_s} | {pct(r['cpu_time_err'])} |")
    failures = [f"{r['model']}: {f}" for r in runs for f in r["compare_failures"]]
    if failures:
        lines += ["", "Compare attempts that stopped outside the cells (rerun; finished cells reused): "
                  + "; ".join(failures)]
    lines += ["", *result["notes"]]
    return "\n".join(lines) + "\n"


def notes(rows: list[dict[str, Any]]) -> list[str]:
    """What dominates the misses, from the rows."""
    out = []
    mem = [r for r in rows if r["mem_err"] is not None and abs(r["mem_err"]) > MEMORY_TARGET]
    if mem:
        worst = max(mem, key=lambda r: abs(r["mem_err"]))
        missed = ", ".join(f"{r['model']} {r['strategy']} {pct(r['mem_err'])}" for r in mem)
        out.append(f"Memory misses: {missed}; "
                   f"the worst's largest predicted term is {worst['largest_term']} "
                   f"({worst['breakdown_gb'][worst['largest_term']]:.2f} GB).")
    slow = [r for r in rows if r["cpu_time_err"] is not None and abs(r["cpu_time_err"]) > TIME_TARGET]
    if slow:
        out.append("Time misses against CPU time: " + ", ".join(
            f"{r['model']} {r['strategy']} {pct(r['cpu_time_err'])} (adapt {r['idle_adapt_s']:.0f} s predicted vs "
            f"{r['adapt_cpu_s']:.0f} s, eval {r['idle_eval_s']:.0f} vs {r['eval_cpu_s']:.0f})" for r in slow) + ".")
    walls = [r["time_err"] for r in rows if r["time_err"] is not None]
    if walls:
        out.append(f"Against wall time the median error is {pct(sorted(walls)[len(walls) // 2])}: the wall clock "
                   "of a shared machine moves with the other jobs between the throughput measurement and the run.")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="smollm2-135m-instruct,gemma-3-270m")
    ap.add_argument("--limit", type=int, default=6)
    ap.add_argument("--gemma-steps", type=int, default=0, help="cpu_max_steps for gemma-3-270m (0: the default).")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (OMP_NUM_THREADS) of each run.")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--strategies", default=",".join(STRATEGIES),
                    help="A subset re-runs those cells only and merges them into the results in --out.")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.limit, args.steps or None, args.strategies.split(","))))
        return
    load = LoadSampler()
    load.thread.start()
    cache = fresh_cache()
    try:
        runs = [run_model(model, args, cache) for model in args.models.split(",")]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    load.stop.set()
    if args.strategies.split(",") != STRATEGIES:
        runs = merged(json.loads((args.out / "plan_accuracy.json").read_text())["runs"], runs)
    rows = [compared(c) for run in runs for c in run["cells"] if c["measured"] is not None]
    result = {
        "machine": f"{platform.node()}: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                   f"{_ram_gb():.0f} GB RAM, Python {platform.python_version()}",
        "command": " ".join(["python", "benchmarks/plan_accuracy.py", *sys.argv[1:]]),
        "limit": args.limit, "torch_threads": args.threads, "load": load.summary(),
        "gemma_note": f"gemma-3-270m at cpu_max_steps={args.gemma_steps or 'default (24)'}", "runs": runs, "rows": rows,
    }
    result["notes"] = notes(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "plan_accuracy.json").write_text(json.dumps(result, indent=1))
    (args.out / "plan_accuracy.md").write_text(markdown(result))
    print(markdown(result))


def run_model(model: str, args: argparse.Namespace, cache: str) -> dict[str, Any]:
    """One model's plan and compare, in a process of its own."""
    steps = args.gemma_steps if model.startswith("gemma") else 0
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HARNESS_CACHE": cache}
    cmd = [sys.executable, __file__, "--worker", model, "--limit", str(args.limit), "--steps", str(steps),
           "--strategies", args.strategies]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"{model}: the worker failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(line.removeprefix("RESULT "))


def merged(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The committed runs with the re-run cells in place of theirs (each cell keeps its own measurements)."""
    fresh = {(r["model"], c["predicted"]["strategy"]): c for r in new for c in r["cells"]}
    return [{**r, "cells": [fresh.get((r["model"], c["predicted"]["strategy"]), c) for c in r["cells"]]} for r in old]


def _ram_gb() -> float:
    import psutil

    return psutil.virtual_memory().total / 1e9


if __name__ == "__main__":
    main()
