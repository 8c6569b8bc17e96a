"""The share of this machine's matmul peak a prompt forward reaches (the planner's FORWARD_EFFICIENCY,
harness/model/plan/timing.py), counted two ways: every position at 2N FLOPs, and the body at 2(N - H)
per position plus the output head H only where logits are kept. A forward that keeps only the last
position's logits (generation's prefill, choice scoring's context) skips the head elsewhere, which
matters for a large vocabulary (Gemma-3-270M: H is 63% of N).

    python benchmarks/forward_efficiency.py [--models smollm2-135m-instruct,gemma-3-270m] [--batch 8] [--tokens 300]

One torch thread, timed by this process's CPU time (other jobs sharing the machine do not count), after
one warm-up forward; the peak is a 1024 x 1024 fp32 matmul timed the same way. Writes
benchmarks/results/forward_efficiency.json and .md.
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


def measure(model: str, batch: int, tokens: int, peak: float, repeats: int = 3) -> list[dict[str, Any]]:
    import torch

    from harness.model.load import load_runtime
    from harness.model.plan import shape_of
    from harness.model.spec import resolve_model

    rt = load_runtime(resolve_model(model))
    shape = shape_of(rt.model.config)
    n, h = shape.matmul_params, shape.head_params
    ids = torch.randint(100, 1000, (batch, tokens), generator=torch.Generator().manual_seed(0))
    rows = []
    with torch.inference_mode():
        rt.model(input_ids=ids, logits_to_keep=1)
        for keep, label in ((1, "last position"), (0, "every position")):
            c0 = time.process_time()
            for _ in range(repeats):
                rt.model(input_ids=ids, logits_to_keep=keep)
            cpu = (time.process_time() - c0) / repeats
            kept = batch if keep == 1 else batch * tokens
            every = batch * tokens * 2 * n
            body = batch * tokens * 2 * (n - h) + kept * 2 * h
            rows.append({"model": model, "logits": label, "cpu_s": cpu, "head_share": h / n,
                         "eff_2n_every_position": every / (cpu * peak), "eff_head_where_kept": body / (cpu * peak)})
    return rows


def markdown(res: dict[str, Any]) -> str:
    lines = [f"Command: `{res['command']}` ({res['machine']}; one torch thread, process CPU time; matmul peak "
             f"{res['peak_gflops']:.0f} GFLOP/s)", "",
             f"A forward over {res['batch']} x {res['tokens']} tokens, as a share of the matmul peak:", "",
             "| model | logits kept at | CPU s | head share of N | counted 2N everywhere | counted with the head "
             "where kept |", "|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['model']} | {r['logits']} | {r['cpu_s']:.2f} | {r['head_share']:.2f} | "
                     f"{r['eff_2n_every_position']:.2f} | {r['eff_head_where_kept']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="smollm2-135m-instruct,gemma-3-270m")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=300)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    peak = cpu_peak_flops()  # one thread: the single thread's matmul peak
    rows = [r for m in args.models.split(",") for r in measure(m, args.batch, args.tokens, peak)]
    res = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()}, {platform.system()}",
           "peak_gflops": peak / 1e9, "batch": args.batch, "tokens": args.tokens, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "forward_efficiency.json").write_text(json.dumps(res, indent=1))
    (RESULTS / "forward_efficiency.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
