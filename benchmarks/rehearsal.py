"""Rehearsal against the same method without replay on legal-qa: task scores and forgetting
(retention accuracy and general-text cross-entropy, adapted vs base), read from compare runs.

    harness compare --suite legal-qa --strategies lora,rehearsal --out /tmp/reh/run
    python benchmarks/rehearsal.py /tmp/reh/run [more run folders...]

Each argument is an --out folder (or a run folder holding report.json; or one cell record .json);
the newest run of each folder is read, and every cell of the strategies `lora` and `rehearsal` is
tabulated. Writes
benchmarks/results/rehearsal.json and .md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
STRATEGIES = ("lora", "rehearsal")


def run_dir(folder: Path) -> Path:
    """`folder` when it holds report.json, else its newest legal-qa run."""
    if (folder / "report.json").is_file():
        return folder
    runs = sorted(d for d in (folder / "legal-qa").iterdir() if (d / "report.json").is_file())
    if not runs:
        raise SystemExit(f"error: no run with report.json under {folder}")
    return runs[-1]


def metrics(tasks: list[dict]) -> dict[str, float]:
    return {f"{t['task']}.{m}": v for t in tasks for m, v in t["metrics"].items()}


def row(record: dict, run: Path) -> dict:
    ret = record["retention"]
    adapted, base = metrics(ret["tasks"]), metrics(ret["base"])
    return {
        "strategy": record["strategy"], "seed": record["seed"], "options": record["options"],
        "run": str(run), "task_metrics": metrics(record["tasks"]),
        "retention": adapted, "retention_base": base,
        "retention_delta": {k: adapted[k] - base[k] for k in adapted},
        "train_steps": record["adapt"]["extras"].get("train_steps"),
        "best_dev_loss": record["adapt"]["extras"].get("best_dev_loss"),
        "replay_rows": record["adapt"]["extras"].get("replay_rows", 0.0),
        "task_rows": record["adapt"]["extras"].get("task_rows"),
        "train_tokens": record["adapt"]["train_tokens"], "adapt_wall_s": record["adapt"]["wall_s"],
        "notes": record["adapt"]["notes"],
    }


def collect(folders: list[Path]) -> list[dict]:
    """Rows of every lora/rehearsal cell: from runs (folders) or single cell records (.json files)."""
    rows = []
    for folder in folders:
        if folder.suffix == ".json":  # a cell record, e.g. <out>/legal-qa/cells/<cell id>.json
            record = json.loads(folder.read_text())
            if record["strategy"] in STRATEGIES and record["status"] == "ok":
                rows.append(row(record, folder))
            continue
        run = run_dir(folder)
        report = json.loads((run / "report.json").read_text())
        for cell in report["cells"]:
            if cell["strategy"] in STRATEGIES and cell["status"] == "ok":
                rows.append(row(json.loads((run / cell["record"]).read_text()), run))
    return rows


def markdown(rows: list[dict], command: str) -> str:
    keys = sorted({k for r in rows for k in r["task_metrics"]})
    lines = ["# Rehearsal vs the same method without replay (legal-qa, SmolLM2-135M-Instruct, CPU)", "",
             f"Command: `{command}`", "",
             "Forgetting is measured on the `general` retention suite (165 multiple-choice questions, 55 "
             "paragraphs; never the replay text), adapted model against the untouched base. Higher mc "
             "accuracy and lower text cross-entropy (nats/token) are better.", "",
             "| strategy | replay rows / task rows | retention mc acc (base) | Δ | text CE (base) | Δ | "
             + " | ".join(keys) + " | adapt s |",
             "|---|---|---|---|---|---|" + "---|" * len(keys) + "---|"]
    for r in rows:
        acc, ce = "mc.accuracy", "text.cross_entropy"
        lines.append(
            f"| {r['strategy']} | {r['replay_rows']:.0f} / {r['task_rows'] or '-'} | "
            f"{r['retention'][acc]:.4f} ({r['retention_base'][acc]:.4f}) | {r['retention_delta'][acc]:+.4f} | "
            f"{r['retention'][ce]:.4f} ({r['retention_base'][ce]:.4f}) | {r['retention_delta'][ce]:+.4f} | "
            + " | ".join(f"{r['task_metrics'].get(k, float('nan')):.4f}" for k in keys)
            + f" | {r['adapt_wall_s']:.0f} |")
    return "\n".join([*lines, "", *verdict(rows)]) + "\n"


def verdict(rows: list[dict]) -> list[str]:
    """What the figures say, computed from them: forgetting of rehearsal against lora, and the price."""
    by = {r["strategy"]: r for r in rows}
    plain, reh = by["lora"], by["rehearsal"]
    acc = reh["retention"]["mc.accuracy"] - plain["retention"]["mc.accuracy"]
    ce = reh["retention"]["text.cross_entropy"] - plain["retention"]["text.cross_entropy"]
    less = [name for name, better in (("retention accuracy", acc > 0), ("general-text cross-entropy", ce < 0))
            if better]
    head = (f"Rehearsal forgets less than lora on {' and '.join(less)}" if less
            else "Rehearsal does not forget less than lora on either measure")
    return [f"{head}: retention accuracy {acc:+.4f}, text cross-entropy {ce:+.4f} nats/token (rehearsal minus lora).",
            f"Task dev loss (best): lora {plain['best_dev_loss']}, rehearsal {reh['best_dev_loss']}. Both train the "
            "same 24 optimizer steps of 8 rows (the CPU budget), so the replay rows take the place of task rows: "
            "rehearsal sees about a quarter fewer task rows. One seed; 165 questions put one question at 0.006.",
            "Adapt seconds are wall times of runs sharing a busy 2-core machine with other jobs: not a speed "
            "comparison."]


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    rows = collect([Path(a) for a in argv])
    if not {r["strategy"] for r in rows} >= set(STRATEGIES):
        found = [r["strategy"] for r in rows]
        raise SystemExit(f"error: need finished cells of {', '.join(STRATEGIES)}; found {found}")
    command = "harness compare --suite legal-qa --strategies lora,rehearsal (default options, seed 0)"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rehearsal.json").write_text(json.dumps({"command": command, "rows": rows}, indent=2) + "\n")
    (RESULTS / "rehearsal.md").write_text(markdown(rows, command))
    print((RESULTS / "rehearsal.md").read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
