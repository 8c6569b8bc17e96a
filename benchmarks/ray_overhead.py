"""What the Ray executor adds to a compare's wall time: the same 6-cell compare (tiny model, the
`mini` test suite) run with the local executor and with `--executor ray` (a private local Ray
cluster started by the compare itself, so Ray's start-up counts), side by side in one run,
alternating, each with fresh output and cache folders. Target: Ray adds at most max(30 s, 20%).
The records of both sides must be equal apart from timing fields.

    python benchmarks/ray_overhead.py [--repeats 2] [--out DIR] [--name ray_overhead]

Writes DIR/<name>.json and .md (default DIR: benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "tests" / "fixtures" / "mini"
STRATEGIES = ["zero-shot", "few-shot", "rag", "lora", "dora", "full-ft"]
RUN_TOML = (
    'suite = "{suite}"\nstrategies = {strategies}\nretention = false\n'
    + "".join(f"[options.{s}]\nmax_steps = 4\nbatch_size = 2\n" for s in ("lora", "dora", "full-ft"))
)


def timed_compare(cfg: Path, model: Path, work: Path, executor: str, *extra: str) -> tuple[float, Path]:
    """Wall time of one compare from a fresh process with fresh output and cache folders, and that folder."""
    out = Path(tempfile.mkdtemp(prefix=f"{executor}-", dir=work))
    env = {**os.environ, "HARNESS_CACHE": str(out / "cache"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "COLUMNS": "160"}
    cmd = [sys.executable, "-m", "harness", "compare", "--config", str(cfg), "--model", str(model),
           "--out", str(out / "reports"), "--executor", executor, *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=out, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{executor} compare failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return wall, out


def records(out: Path) -> dict[str, Any]:
    """strategy -> record without timing fields (the determinism test's rule)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_determinism import without_timing

    cells = out / "reports" / "mini" / "cells"
    recs = [json.loads(p.read_text()) for p in cells.glob("*.json")]
    return {r["strategy"]: without_timing(r) for r in recs}


def rag_meta_bytes(out: Path) -> int:
    """Size of the RAG index's meta.json in a run's cache (it holds the index build time)."""
    return sum(f.stat().st_size for f in (out / "cache" / "rag").glob("*/meta.json"))


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths of the fields where two records (or record maps) differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [path.lstrip(".")]


def markdown(result: dict) -> str:
    rows = "".join(f"| {i + 1} | {r['local_s']} | {r['ray_s']} | {r['overhead_s']:+.1f} ({r['overhead_pct']:+.0f}%) "
                   f"| {r['allowed_s']} | {'yes' if r['within_target'] else 'no'} | {r['ray_1cpu_running_cluster_s']} "
                   f"({r['ray_1cpu_overhead_s']:+.1f}) |\n"
                   for i, r in enumerate(result["pairs"]))
    return (
        f"# Ray executor overhead: {len(STRATEGIES)}-cell compare, tiny model\n\n"
        f"Strategies {', '.join(STRATEGIES)} (trained ones 4 steps) on the `mini` test suite; each run is a fresh "
        "`harness compare` process with fresh output and cache folders; the Ray side starts its own local cluster "
        f"(start-up included). Target: Ray adds at most max(30 s, 20%) of the local wall time.\n\n"
        "| pair | local s | ray s | ray overhead | allowed s | within target | ray, 1 CPU, cluster up: s (vs local) |\n"
        "|---|---|---|---|---|---|---|\n"
        f"{rows}\n"
        "Record fields (timing fields aside) that differ between the local and the Ray records: "
        f"{', '.join(result['fields_differing_local_vs_ray']) or 'none'}; between the first and the last local run: "
        f"{', '.join(result['fields_differing_local_vs_local']) or 'none'} (a field that also differs between two "
        "local runs is not the executor's doing). RAG's index size counts its meta.json, which holds the index "
        "build time, so its length in bytes moves with the digits of a timing; per pair, RAG index bytes Ray minus "
        "local vs meta.json bytes Ray minus local: "
        + ", ".join(f"{r['rag_index_bytes_ray_minus_local']:+d} vs {r['rag_meta_json_bytes_ray_minus_local']:+d}"
                    for r in result["pairs"]) + ".\n\n"
        "The local executor runs the cells one after another, torch using every core; Ray runs one cell per "
        "core at a time (Ray sets one thread per task), each worker loading the model and libraries itself. The "
        "last column runs the Ray side on a one-CPU cluster started before the timing: cells one at a time, so it "
        "shows Ray's per-task cost (scheduling, worker processes importing torch and loading the model) without "
        "its parallelism or its start-up.\n\n"
        f"Machine: {result['machine']}, Ray {result['ray_version']}. Shared with other jobs running at the same "
        "time, so single timings "
        "move by several seconds; the pairs alternate local and Ray to spread that noise over both sides.\n"
    )


def one_pair(cfg: Path, model: Path, work: Path, serial: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """local, then Ray (own cluster), then Ray on the running one-CPU cluster: timings and records."""
    local_s, local = timed_compare(cfg, model, work, "local")
    ray_s, ray = timed_compare(cfg, model, work, "ray")
    serial_s, ray_serial = timed_compare(cfg, model, work, "ray", "--ray-address", serial)
    recs = [records(local), records(ray), records(ray_serial)]
    if any(len(r) != len(STRATEGIES) for r in recs):
        sys.exit(f"expected {len(STRATEGIES)} records a side, got {[len(r) for r in recs]}")
    allowed = max(30.0, 0.2 * local_s)
    return {
        "local_s": round(local_s, 1), "ray_s": round(ray_s, 1), "overhead_s": round(ray_s - local_s, 1),
        "overhead_pct": round(100 * (ray_s - local_s) / local_s, 1), "allowed_s": round(allowed, 1),
        "within_target": ray_s - local_s <= allowed,
        "ray_1cpu_running_cluster_s": round(serial_s, 1), "ray_1cpu_overhead_s": round(serial_s - local_s, 1),
        "rag_index_bytes_ray_minus_local": recs[1]["rag"]["adapt"]["artifact_bytes"]
        - recs[0]["rag"]["adapt"]["artifact_bytes"],
        "rag_meta_json_bytes_ray_minus_local": rag_meta_bytes(ray) - rag_meta_bytes(local),
    }, recs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2, help="Pairs (local, ray) to run, alternating.")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--name", default="ray_overhead", help="Result file stem.")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="harness-ray-bench-"))
    model = build_tiny_model(work / "tiny")
    cfg = work / "run.toml"
    cfg.write_text(RUN_TOML.format(suite=SUITE, strategies=json.dumps(STRATEGIES)))
    import ray

    # A second, one-CPU cluster that is already up: Ray's per-task cost without its parallelism or start-up.
    serial = ray.init(address="local", num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1",
                      log_to_driver=False).address_info["gcs_address"]
    pairs, local_vs_ray, first_local = [], set(), None
    try:
        for _ in range(args.repeats):
            pair, recs = one_pair(cfg, model, work, serial)
            pairs.append(pair)
            local_vs_ray |= {d for other in recs[1:] for d in differences(recs[0], other)}
            first_local = first_local or recs[0]
            local_vs_local = set(differences(first_local, recs[0]))
    finally:
        ray.shutdown()
    result = {"strategies": STRATEGIES, "cells": len(STRATEGIES), "pairs": pairs,
              "fields_differing_local_vs_ray": sorted(local_vs_ray),
              "fields_differing_local_vs_local": sorted(local_vs_local),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
              "ray_version": _ray_version()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    md = markdown(result)
    (args.out / f"{args.name}.md").write_text(md)
    print(md)


def _ray_version() -> str:
    import ray

    return str(ray.__version__)


if __name__ == "__main__":
    main()
