"""Logits at the labelled positions only (harness.model.loss) against logits at every position, side by
side: the harness's training loop (harness.model.training.fit_rows) on legal-qa's real training rows, the
same steps, seed and rows both ways, for full fine-tuning and LoRA on both real models. Each run is its
own process (its peak RSS is its own); the two ways must reach the same training losses.

    python benchmarks/train_logits.py [--models smollm2-135m-instruct,gemma-3-270m] [--steps 6]

Memory at the planned shape is benchmarks/memory_timeline.py's to measure (this process's peak
includes loading and saving). Writes <out>/train_logits.json and train_logits.md.
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

WAYS = ("every position", "labelled positions")


def worker(model_ref: str, method: str, keep: bool, steps: int) -> dict[str, Any]:
    import copy

    import torch

    from harness.data.catalog import load_suite
    from harness.model import training
    from harness.model.load import load_runtime
    from harness.model.spec import resolve_model
    from harness.strategy.training import sft_pairs, tokenize_pairs

    torch.manual_seed(0)
    rt = load_runtime(resolve_model(model_ref), device="cpu")
    suite = load_suite("legal-qa")
    system = "You are a precise legal assistant. Reply with the answer only, no explanation."
    rows = tokenize_pairs(rt, sft_pairs(rt, suite, "train", system), 384)
    model = copy.deepcopy(rt.model)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    else:
        model.requires_grad_(True)
    if not keep:
        training.keeps_logits = lambda _model: False  # type: ignore[assignment]  # the baseline: every position
    o = training.LoopOptions.model_validate({"max_steps": steps, "cpu_max_steps": steps, "batch_size": 8,
                                             "learning_rate": 1e-4, "eval_every": steps, "epochs": 100})
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = training.fit_rows(model, rt.tokenizer.pad_token_id, rows, [], o, Path(out), 0, "cpu")
        wall = time.perf_counter() - t0
    losses = [r["train_loss"] for r in result.curve if "train_loss" in r]
    return {"model": model_ref, "method": method, "way": WAYS[keep], "steps": result.steps,
            "wall_s": round(wall, 2), "s_per_step": round(wall / max(1, result.steps), 3),
            "train_tokens": result.train_tokens, "logit_positions": result.logit_positions,
            "train_losses": losses}


def run(model: str, method: str, keep: bool, steps: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", f"{model},{method},{int(keep)}", "--steps", str(steps)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(result: dict[str, Any]) -> str:
    out = ["# Training logits at the labelled positions only, against every position", "",
           f"Written by `benchmarks/train_logits.py` ({result['config']['steps']} optimizer steps of 8 legal-qa "
           "rows, fp32, CPU, each run its own process; the loop's setup and its one checkpoint included).", "",
           "| model | method | s/step, every position | s/step, labelled only | speedup | logits computed | "
           "largest training-loss difference |", "|---|---|---|---|---|---|---|"]
    for row in result["pairs"]:
        every, kept = row["every position"], row["labelled positions"]
        out.append(f"| {row['model']} | {row['method']} | {every['s_per_step']:.2f} | {kept['s_per_step']:.2f} | "
                   f"{every['s_per_step'] / kept['s_per_step']:.2f}x | "
                   f"{kept['logit_positions']:,} of {kept['train_tokens']:,} tokens | "
                   f"{row['max_loss_diff']:.1e} |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="smollm2-135m-instruct,gemma-3-270m")
    ap.add_argument("--methods", default="full-ft,lora")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        model, method, keep = args.worker.split(",")
        print(json.dumps(worker(model, method, keep == "1", args.steps)))
        return
    pairs = []
    for model in args.models.split(","):
        for method in args.methods.split(","):
            row = {"model": model, "method": method}
            for keep in (False, True):
                row[WAYS[keep]] = run(model, method, keep, args.steps)
            a, b = row[WAYS[0]]["train_losses"], row[WAYS[1]]["train_losses"]
            row["max_loss_diff"] = max(abs(x - y) for x, y in zip(a, b, strict=True))
            pairs.append(row)
            print(json.dumps(row), flush=True)
    config = {"steps": args.steps, "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "load_average_1m_at_end": round(os.getloadavg()[0], 2),
              "command": f"python benchmarks/train_logits.py --models {args.models} --steps {args.steps}"}
    result = {"config": config, "pairs": pairs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train_logits.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "train_logits.md").write_text(markdown(result))


if __name__ == "__main__":
    main()
