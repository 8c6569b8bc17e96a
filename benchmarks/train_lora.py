"""LoRA training throughput: the harness's `lora` strategy vs a plain peft + transformers Trainer
script, on the same model, data (the suite's train split), settings and steps, side by side.

    python benchmarks/train_lora.py [--suite legal-qa] [--steps 12] [--batch-size 8] [--out benchmarks/results]

Both sample batches grouped by length, longest first, as the harness's loop does (a random sampler would
see other rows in a few steps: not the same work), and both end with the loop's dev evaluation and
checkpoint (transformers evaluates and saves at the last step whatever the interval). Tokens/s counts the
non-padding tokens each side's trainer saw (its own count; they must agree), over training wall time.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from harness_strategies.weights import Lora

from harness.data.catalog import load_suite
from harness.model.load import load_runtime
from harness.model.spec import resolve_model
from harness.strategy.protocol import RunContext
from harness.strategy.training import sft_pairs, tokenize_pairs


def plain_peft_trainer(rt, rows, dev, steps: int, batch: int, out: Path) -> tuple[float, int]:
    """The script a user would write by hand: get_peft_model + Trainer + DataCollatorForSeq2Seq (batches
    grouped by length, as the harness's)."""
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    model = get_peft_model(copy.deepcopy(rt.model), LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                                               target_modules=["q_proj", "v_proj"],
                                                               task_type="CAUSAL_LM"))
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=batch, max_steps=steps,
                             learning_rate=2e-4, logging_steps=steps, report_to="none", eval_strategy="steps",
                             eval_steps=10_000, save_strategy="steps", save_steps=10_000,
                             use_cpu=True, disable_tqdm=True, seed=0, include_num_input_tokens_seen="non_padding",
                             train_sampling_strategy="group_by_length", data_seed=0)
    collate = DataCollatorForSeq2Seq(rt.tokenizer, padding=True)
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                      eval_dataset=Dataset.from_list(dev), data_collator=collate)
    t0 = time.perf_counter()
    trainer.train()
    return time.perf_counter() - t0, int(trainer.state.num_input_tokens_seen)


def harness_lora(rt, suite, steps: int, batch: int, work: Path) -> tuple[float, int, float]:
    """trainer.train's wall time, the tokens it saw, and the positions whose logits it computed
    (harness.model.loss)."""
    run = RunContext(0, "cpu", work / "cell", work / "cache", rt.spec, lambda: rt)
    opts = Lora.Options(max_steps=steps, batch_size=batch, eval_every=10_000, learning_rate=2e-4, cpu_max_steps=0)
    report = Lora(opts).adapt(run, suite).report
    wall = float(json.loads((work / "cell" / "train" / "curve.json").read_text())["wall_s"])  # trainer.train only
    return wall, report.train_tokens, report.extras.get("logit_positions", float(report.train_tokens))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="legal-qa")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2, help="alternating runs of each; the fastest counts")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    rt = load_runtime(resolve_model(None), "cpu")
    suite = load_suite(args.suite)
    rows = tokenize_pairs(rt, sft_pairs(rt, suite, "train", Lora.Options().system), 384)
    dev = tokenize_pairs(rt, sft_pairs(rt, suite, "dev", Lora.Options().system), 384)
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    plain, ours = [], []
    for i in range(args.repeats):  # alternate, so drift on a shared machine hits both sides alike
        plain.append(plain_peft_trainer(rt, rows, dev, args.steps, args.batch_size, work / f"plain{i}"))
        ours.append(harness_lora(rt, suite, args.steps, args.batch_size, work / f"ours{i}"))
    shutil.rmtree(work, ignore_errors=True)
    (plain_s, plain_tokens), (ours_s, ours_tokens, positions) = min(plain), min(ours)
    result = {"runs_plain_s": [round(x[0], 1) for x in plain], "runs_harness_s": [round(x[0], 1) for x in ours],
              "steps": args.steps, "batch_size": args.batch_size, "plain_tokens": plain_tokens,
              "harness_tokens": ours_tokens, "cpus": os.cpu_count(), "plain_s": round(plain_s, 1),
              "harness_s": round(ours_s, 1), "plain_tokens_per_s": round(plain_tokens / plain_s, 1),
              "harness_tokens_per_s": round(ours_tokens / ours_s, 1),
              "harness_logits_share": round(positions / ours_tokens, 4),
              "note": "both times are trainer.train() alone (no model copy, wrapping or saving); each side's own "
                      "count of the tokens it saw; the plain script computes logits at every position, the harness "
                      "at the labelled ones (harness_logits_share)"}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train_lora.json").write_text(json.dumps(result, indent=1))
    md = ("| LoRA r=8 q,v | wall s | tokens seen | tokens/s |\n|---|---|---|---|\n"
          f"| plain peft + Trainer | {result['plain_s']} | {plain_tokens} | {result['plain_tokens_per_s']} |\n"
          f"| harness `lora` | {result['harness_s']} | {ours_tokens} | {result['harness_tokens_per_s']} |\n")
    (args.out / "train_lora.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
