"""Importing the real datasets in ../shared/data: time, and what the hygiene check finds.

Imports (read, write the suite folder, validate it with the normal loader) the five LegalBench tasks
as one suite, MMLU's dev/val files (every subject), and ContractNLI's dev.json, each into a fresh
temporary folder, then runs the hygiene check on each. Reports the wall time of each step (best of
`--repeat` runs), the duplicate counts of the CUAD tasks (which `load_suite` drops before scoring),
and every leak finding. The LegalBench and MMLU imports must take under 10 s together.

    python benchmarks/import_formats.py [--data ../shared/data] [--repeat 3] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.data import hygiene
from harness.data.formats import ImportOptions, import_suite
from harness.data.suites import Suite

BUDGET_S = 10.0


def timed_import(fmt: str, source: Path, repeat: int, options: ImportOptions) -> tuple[Suite, float]:
    best, suite = float("inf"), None
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            suite = import_suite(fmt, str(source), Path(tmp) / "suite", options)
            best = min(best, time.perf_counter() - t0)
    assert suite is not None
    return suite, best


def cli_seconds(fmt: str, source: Path) -> float:
    """Wall time of `harness suites import` in a fresh process (start-up and hygiene summary included)."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness", "suites", "import", fmt, str(source), "--out",
                        str(Path(tmp) / "suite")], check=True, capture_output=True)
        return round(time.perf_counter() - t0, 3)


def measure(name: str, fmt: str, source: Path, repeat: int, options: ImportOptions) -> dict[str, Any]:
    suite, import_s = timed_import(fmt, source, repeat, options)
    t0 = time.perf_counter()
    report = hygiene.check(suite)
    check_s = time.perf_counter() - t0
    return {
        "name": name, "format": fmt, "options": options.describe(), "import_s": round(import_s, 3),
        "check_s": round(check_s, 3), "tasks": len(suite.tasks),
        "items": sum(len(t.train) + len(t.dev) + len(t.test) for t in suite.tasks), "corpus_docs": len(suite.corpus),
        "findings": [{"kind": f.kind, "task": f.task, "split": f.split, "count": f.count, "of": f.of}
                     for f in report.findings],
        "over_threshold": report.over_threshold(),
    }


def cuad_duplicates(row: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for f in row["findings"]:
        if f["task"].startswith("CUAD") and f["kind"] in (hygiene.DUPLICATE, hygiene.NORMALIZED_DUPLICATE):
            out.append({"task": f["task"], "split": f["split"], "kind": f["kind"], "count": f["count"], "of": f["of"]})
    return out


def markdown(result: dict[str, Any]) -> str:
    md = [f"Import of the real datasets in ../shared/data, {result['cpus']} CPUs, best of {result['repeat']} runs "
          f"(read + write + validate). LegalBench + MMLU: {result['legalbench_plus_mmlu_s']} s in process; "
          f"{result['legalbench_plus_mmlu_cli_s']} s as two `harness suites import` commands (fresh processes, "
          f"hygiene summary included; budget {BUDGET_S:.0f} s).", "",
          "| dataset | options | tasks | items | corpus docs | import s | hygiene check s |",
          "|---|---|---|---|---|---|---|"]
    md += [f"| {r['name']} | {'carve' if r['options']['carve'] else '-'} | {r['tasks']} | {r['items']} | "
           f"{r['corpus_docs']} | {r['import_s']} | {r['check_s']} |" for r in result["rows"]]
    md += ["", "CUAD duplicates (exact rows, and equal after normalization; `load_suite` keeps the first of each):", "",
           "| task | split | kind | items | of |", "|---|---|---|---|---|"]
    md += [f"| {d['task']} | {d['split']} | {d['kind']} | {d['count']} | {d['of']} |"
           for d in result["cuad_duplicates"]]
    md += ["", "Leak findings (test items copied or nearly copied from train/dev, or in the corpus):", "",
           "| dataset | task | check | split | items | of test |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        md += [f"| {r['name']} | {f['task']} | {f['kind']} | {f['split']} | {f['count']} | {f['of']} |"
               for f in r["findings"] if f["kind"] in hygiene.LEAK_KINDS]
    md += ["", "Above the default thresholds (`harness suites check` exits 2 unless --allow-leaks):", ""]
    md += [f"- {r['name']}: {line}" for r in result["rows"] for line in r["over_threshold"]] or ["- none"]
    return "\n".join(md) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    plan = [
        ("legalbench (5 tasks)", "legalbench", args.data / "legalbench" / "tasks", ImportOptions()),
        ("legalbench (5 tasks), carved", "legalbench", args.data / "legalbench" / "tasks", ImportOptions(carve=True)),
        ("mmlu dev/val (all subjects)", "mmlu", args.data / "mmlu", ImportOptions()),
        ("contractnli dev.json", "contractnli", args.data / "contractnli" / "dev.json", ImportOptions()),
    ]
    rows = [measure(name, fmt, src, args.repeat, opts) for name, fmt, src, opts in plan]
    both = round(rows[0]["import_s"] + rows[2]["import_s"], 3)
    cli = round(cli_seconds("legalbench", plan[0][2]) + cli_seconds("mmlu", plan[2][2]), 3)
    result = {"cpus": os.cpu_count(), "repeat": args.repeat, "legalbench_plus_mmlu_s": both,
              "legalbench_plus_mmlu_cli_s": cli, "under_budget": cli < BUDGET_S,
              "cuad_duplicates": cuad_duplicates(rows[0]), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "import_formats.json").write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(result)
    (args.out / "import_formats.md").write_text(text)
    print(text)
    if not result["under_budget"]:
        raise SystemExit(f"LegalBench + MMLU import took {cli} s, over the {BUDGET_S:.0f} s budget")


if __name__ == "__main__":
    main()
