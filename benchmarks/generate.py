"""Batched greedy generation (`ModelRuntime.generate`, left padding) vs a per-example `model.generate`
loop (batch 1, no padding), on the same prompts, side by side in one run.

Prompts: a suite task's test questions rendered exactly as the `zero-shot` strategy shows them
(`zero_shot_prompt` with the default system prompt, through the model's chat template). Both sides
decode greedily with the same stop tokens and `max_new_tokens` (the task's), and cut and decode
the output the same way. Tokens/s counts generated tokens up to the first stop token, over the wall
time of all prompts (tokenization included on both sides). Where an output differs, the first
differing step is located and the unbatched model's margin between its top two logits there is
reported: greedy decoding flips only on near ties, when left padding changes the float rounding.

    python benchmarks/generate.py [--suite legal-qa] [--task statute-qa] [--batch-size 16] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.catalog import load_suite
from harness.data.prompts import DEFAULT_SYSTEM, zero_shot_prompt
from harness.data.suites import Task
from harness.model.load import load_runtime
from harness.model.runtime import ModelRuntime
from harness.model.spec import resolve_model


@dataclass(frozen=True)
class Output:
    text: str
    tokens: int
    """Generated tokens up to the first stop token."""
    ids: tuple[int, ...] = ()
    """Those tokens (kept for the per-example loop, to locate a difference)."""


def prompts_of(rt: ModelRuntime, task: Task, limit: int | None) -> list[str]:
    examples = task.test[:limit] if limit else task.test
    return [rt.render(zero_shot_prompt(task, ex, DEFAULT_SYSTEM)) for ex in examples]


def cut(rt: ModelRuntime, row: list[int], stop: Sequence[int]) -> Output:
    """The generated ids up to the first stop token, decoded as the runtime decodes them."""
    n = next((k for k, t in enumerate(row) if t in stop), len(row))
    return Output(rt.tokenizer.decode(row[:n], skip_special_tokens=True), n, tuple(row[:n]))


def one_at_a_time(rt: ModelRuntime, texts: Sequence[str], max_new_tokens: int) -> tuple[list[Output], float]:
    """What a user writes by hand: `model.generate` on each prompt alone (no padding)."""
    import torch

    stop = rt._stop_ids()  # the same stop tokens as the runtime
    pad = rt.tokenizer.pad_token_id
    outs = []
    t0 = time.perf_counter()
    for text in texts:
        ids = torch.tensor([rt.encode(text)])
        with torch.inference_mode():
            seq = rt.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                    do_sample=False, eos_token_id=stop, pad_token_id=pad, top_p=None, top_k=None,
                                    temperature=None)
        outs.append(cut(rt, seq[0, ids.shape[1]:].tolist(), stop))
    return outs, time.perf_counter() - t0


def batched(rt: ModelRuntime, texts: Sequence[str], max_new_tokens: int, batch_size: int) -> tuple[list[Output], float]:
    t0 = time.perf_counter()
    gens = rt.generate(texts, max_new_tokens, batch_size=batch_size)
    seconds = time.perf_counter() - t0
    return [Output(g.text, g.output_tokens) for g in gens], seconds


def top2_margin(rt: ModelRuntime, prompt: str, prefix: Sequence[int]) -> float:
    """Unbatched logit gap between the best and second-best next token after prompt + prefix."""
    import torch

    ids = torch.tensor([rt.encode(prompt) + list(prefix)])
    with torch.inference_mode():
        logits = rt.model(input_ids=ids, logits_to_keep=1).logits[0, -1].float()
    top = torch.topk(logits, 2).values
    return float(top[0] - top[1])


def differences(rt: ModelRuntime, texts: Sequence[str], loop: Sequence[Output],
                batch: Sequence[Output]) -> list[dict[str, Any]]:
    diffs = []
    for i, (text, a, b) in enumerate(zip(texts, loop, batch, strict=True)):
        if a.text == b.text:
            continue
        # the first step whose loop token takes the loop's text off the batched text
        step = next((k for k in range(len(a.ids))
                     if not b.text.startswith(rt.tokenizer.decode(a.ids[: k + 1], skip_special_tokens=True))),
                    len(a.ids))
        diffs.append({"item": i, "loop": a.text, "batched": b.text, "first_differing_step": step,
                      "top2_logit_margin": round(top2_margin(rt, text, a.ids[:step]), 5)})
    return diffs


def markdown(r: dict[str, Any]) -> str:
    return (f"{r['prompts']} prompts ({r['suite']}/{r['task']} test, zero-shot prompt, mean {r['mean_prompt_tokens']} "
            f"prompt tokens), greedy, max_new_tokens {r['max_new_tokens']}, fp32 CPU, {r['torch_threads']} threads.\n\n"
            "| generation | wall s | generated tokens | tokens/s |\n|---|---|---|---|\n"
            f"| per-example `model.generate` loop | {r['loop_s']} | {r['loop_tokens']} | {r['loop_tokens_per_s']} |\n"
            f"| `ModelRuntime.generate`, batch {r['batch_size']} | {r['batched_s']} | {r['batched_tokens']} | "
            f"{r['batched_tokens_per_s']} |\n\n"
            f"Speedup {r['speedup']}x (target {r['speedup_target']}x). Identical outputs: {r['identical']} of "
            f"{r['prompts']}" + (f"; differing items: {r['differences']}" if r["differences"] else "") + ".\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="legal-qa")
    ap.add_argument("--task", default="statute-qa")
    ap.add_argument("--limit", type=int, default=None, help="test items (default: all)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--target", type=float, default=4.0, help="batched over loop tokens/s (issue 9)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    import torch

    rt = load_runtime(resolve_model(None), "cpu")
    task = next(t for t in load_suite(args.suite).tasks if t.name == args.task)
    texts = prompts_of(rt, task, args.limit)
    rt.generate(texts[:1], 2, batch_size=1)  # one-time start-up (thread pools, allocator) outside both timings
    batch_outs, batch_s = batched(rt, texts, task.max_new_tokens, args.batch_size)
    loop_outs, loop_s = one_at_a_time(rt, texts, task.max_new_tokens)
    loop_tokens, batch_tokens = sum(o.tokens for o in loop_outs), sum(o.tokens for o in batch_outs)
    diffs = differences(rt, texts, loop_outs, batch_outs)
    result = {"suite": args.suite, "task": args.task, "prompts": len(texts), "batch_size": args.batch_size,
              "max_new_tokens": task.max_new_tokens, "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
              "mean_prompt_tokens": round(sum(len(rt.encode(t)) for t in texts) / len(texts), 1),
              "mean_output_tokens": round(loop_tokens / len(texts), 1),
              "loop_s": round(loop_s, 2), "batched_s": round(batch_s, 2),
              "loop_tokens": loop_tokens, "batched_tokens": batch_tokens,
              "loop_tokens_per_s": round(loop_tokens / loop_s, 1),
              "batched_tokens_per_s": round(batch_tokens / batch_s, 1),
              "speedup": round((batch_tokens / batch_s) / (loop_tokens / loop_s), 2), "speedup_target": args.target,
              "identical": len(texts) - len(diffs), "differences": diffs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "generate.json").write_text(json.dumps(result, indent=1))
    (args.out / "generate.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
