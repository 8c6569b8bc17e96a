"""The share of this machine's matmul peak the planner's work reaches (its FORWARD_EFFICIENCY and
TRAIN_EFFICIENCY per compute precision, harness/model/plan/timing.py), in fp32 and in bf16 side by side.

Forwards are counted two ways: every position at 2N FLOPs, and the body at 2(N - H) per position plus
the output head H only where logits are kept. A forward that keeps only the last position's logits
(generation's prefill, choice scoring's context) skips the head elsewhere, which matters for a large
vocabulary (Gemma-3-270M: H is 63% of N). A training step (forward, backward, AdamW; LoRA r 8 on q and v,
or every weight) is counted as harness.model.throughput.train_flops counts it, logits at every position.

    python benchmarks/forward_efficiency.py [--models smollm2-135m-instruct,gemma-3-270m] [--batch 8]
                                            [--tokens 300] [--train-tokens 100] [--precisions fp32,bf16]

One torch thread, timed by this process's CPU time (other jobs sharing the machine do not count), after
one warm-up; each precision against its own peak, a 1024 x 1024 matmul in that precision timed the same
way. bf16 is harness.core.precision's configuration: bf16 weights and autocast, fp32 trainable weights.
Writes benchmarks/results/forward_efficiency.json and .md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from plan_accuracy import cpu_peak_flops  # the same matmul peak, timed by CPU time

RESULTS = Path(__file__).parent / "results"


def forward_rows(rt: Any, model: str, batch: int, tokens: int, peak: float, repeats: int = 3) -> list[dict[str, Any]]:
    import torch

    from harness.core.precision import autocast
    from harness.model.plan import shape_of

    shape = shape_of(rt.model.config)
    n, h = shape.matmul_params, shape.head_params
    ids = torch.randint(100, 1000, (batch, tokens), generator=torch.Generator().manual_seed(0))
    rows = []
    with torch.inference_mode(), autocast("cpu", rt.compute_dtype):
        rt.model(input_ids=ids, logits_to_keep=1)
        for keep, label in ((1, "last position"), (0, "every position")):
            c0 = time.process_time()
            for _ in range(repeats):
                rt.model(input_ids=ids, logits_to_keep=keep)
            cpu = (time.process_time() - c0) / repeats
            kept = batch if keep == 1 else batch * tokens
            every = batch * tokens * 2 * n
            body = batch * tokens * 2 * (n - h) + kept * 2 * h
            rows.append({"model": model, "work": f"forward, logits at {label}", "cpu_s": cpu,
                         "eff_2n_every_position": every / (cpu * peak), "efficiency": body / (cpu * peak)})
    return rows


def step(model: Any, opt: Any, ids: Any, dtype: str) -> None:
    """One training step: forward under the precision's autocast, backward, AdamW."""
    from harness.core.precision import autocast

    with autocast("cpu", dtype):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    opt.zero_grad()


def train_rows(rt: Any, model: str, batch: int, tokens: int, peak: float, repeats: int = 2) -> list[dict[str, Any]]:
    import copy

    import torch

    from harness.model.plan import shape_of
    from harness.model.throughput import train_flops
    from harness.model.training import master_weights

    shape = shape_of(rt.model.config)
    ids = torch.randint(100, 1000, (batch, tokens), generator=torch.Generator().manual_seed(0))
    rows = []
    for method in ("lora", "full-ft"):
        trained = copy.deepcopy(rt.model)
        if method == "lora":
            from peft import LoraConfig, get_peft_model

            trained = get_peft_model(trained, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
        else:
            trained.requires_grad_(True)
        master_weights(trained)
        params = [p for p in trained.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-5)

        step(trained, opt, ids, rt.compute_dtype)
        c0 = time.process_time()
        for _ in range(repeats):
            step(trained, opt, ids, rt.compute_dtype)
        cpu = (time.process_time() - c0) / repeats
        trainable = sum(p.numel() for p in params)
        flops = train_flops(shape.matmul_params, shape.head_params, trainable, batch * tokens,
                            head_trains=method == "full-ft")
        rows.append({"model": model, "work": f"training step, {method}", "cpu_s": cpu,
                     "eff_2n_every_position": None, "efficiency": flops / (cpu * peak)})
        del trained, opt
    return rows


def decode_row(rt: Any, model: str, new: int = 32) -> dict[str, Any]:
    """A greedy generation step at batch 1: weight bytes streamed per CPU second (the planner's
    decode_bytes_per_s), from generating 1 + `new` tokens against 1."""
    import torch

    from harness.core.precision import autocast

    ids = torch.randint(100, 1000, (1, 20), generator=torch.Generator().manual_seed(0))
    kw = dict(do_sample=False, top_p=None, top_k=None, temperature=None, pad_token_id=0)
    times = {}
    with torch.inference_mode(), autocast("cpu", rt.compute_dtype):
        rt.model.generate(input_ids=ids, max_new_tokens=2, min_new_tokens=2, **kw)
        for n in (1, 1 + new):
            c0 = time.process_time()
            rt.model.generate(input_ids=ids, max_new_tokens=n, min_new_tokens=n, **kw)
            times[n] = time.process_time() - c0
    per_step = (times[1 + new] - times[1]) / new
    weight_bytes = sum(p.numel() * p.element_size() for p in rt.model.parameters())
    return {"model": model, "work": "generation step, batch 1", "cpu_s": per_step, "eff_2n_every_position": None,
            "efficiency": None, "bytes_per_s": weight_bytes / per_step}


def measure(model: str, precision: str, args: Any) -> list[dict[str, Any]]:
    from harness.model.load import load_runtime
    from harness.model.spec import resolve_model

    dtype = "bfloat16" if precision == "bf16" else "float32"
    peak = cpu_peak_flops(dtype=dtype)  # one thread: the single thread's matmul peak in this precision
    rt = load_runtime(resolve_model(model), device="cpu", dtype=dtype)
    rows = [*forward_rows(rt, model, args.batch, args.tokens, peak), decode_row(rt, model)]
    rows += train_rows(rt, model, args.batch, args.train_tokens, peak)
    return [{**r, "precision": precision, "peak_gflops": peak / 1e9} for r in rows]


def markdown(res: dict[str, Any]) -> str:
    lines = [f"Command: `{res['command']}` ({res['machine']}; one torch thread, process CPU time)", "",
             f"Forwards over {res['batch']} x {res['tokens']} tokens, training steps over {res['batch']} x "
             f"{res['train_tokens']} tokens, as a share of the matmul peak in the same precision:", "",
             "| model | precision | peak GFLOP/s | work | CPU s | counted 2N everywhere | efficiency (the planner's "
             "count) |", "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        every = "" if r["eff_2n_every_position"] is None else f"{r['eff_2n_every_position']:.2f}"
        eff = (f"{r['efficiency']:.2f}" if r["efficiency"] is not None
               else f"{r['bytes_per_s'] / 1e9:.1f} GB/s of weights")
        lines.append(f"| {r['model']} | {r['precision']} | {r['peak_gflops']:.0f} | {r['work']} | {r['cpu_s']:.3f} | "
                     f"{every} | {eff} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="smollm2-135m-instruct,gemma-3-270m")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=300)
    ap.add_argument("--train-tokens", type=int, default=100)
    ap.add_argument("--precisions", default="fp32,bf16")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = [r for m in args.models.split(",") for p in args.precisions.split(",") for r in measure(m, p, args)]
    res = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()}, {platform.system()}",
           "batch": args.batch, "tokens": args.tokens, "train_tokens": args.train_tokens, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "forward_efficiency.json").write_text(json.dumps(res, indent=1))
    (RESULTS / "forward_efficiency.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
