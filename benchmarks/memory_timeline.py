"""When does full fine-tuning peak on a CPU, and which terms are live then? One process per model, the
harness's own training loop (harness.model.training.fit_rows, a deep copy of the loaded base as the
full-ft strategy trains it), synthetic rows at the batch and length the plan uses for legal-qa, each
labelled on its last k tokens, k the positions whose logits the plan counts for its worst batch
(harness.model.loss computes logits there only).

    python benchmarks/memory_timeline.py --model gemma-3-270m
    python benchmarks/memory_timeline.py --model smollm2-135m-instruct

Hooks record the process RSS at points of every step: before the forward, when the logits' gradient
exists (the top of the cross-entropy backward: fp32 logits, saved log-softmax, gradients), when the
backward reaches the lowest layer and after the optimizer step; with the number of
parameters holding a gradient at each point. A 2 ms sampler records the peak overall and since the last
point. Prints one JSON line and merges it, keyed by model, into <out>/memory_timeline.json, beside what
`harness plan` predicts for full-ft on legal-qa (its peak is planned at this batch and length).
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def rss() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e9


def grads_gb(model: Any) -> float:
    return sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None) / 1e9


@contextmanager
def _optimizer_marks(mark: Any) -> Iterator[None]:
    """Mark before and after every optimizer step (torch's optimizer step hooks, on every optimizer)."""
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

    handles = [register_optimizer_step_pre_hook(lambda *_: mark("optimizer step begins")),
               register_optimizer_step_post_hook(lambda *_: mark("optimizer step ends"))]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def probe(model_ref: str, batch: int, seq: int, steps: int, labelled: int) -> dict[str, Any]:
    import torch

    from harness.model.load import load_runtime
    from harness.model.spec import resolve_model
    from harness.model.training import LoopOptions, fit_rows, on_train_step

    torch.manual_seed(0)
    base = load_runtime(resolve_model(model_ref), device="cpu")
    model = copy.deepcopy(base.model)
    model.train()
    events: list[dict[str, Any]] = []
    step = [0]

    peak = [rss(), rss()]  # overall, since the last mark

    def mark(name: str) -> None:
        now = rss()
        events.append({"step": step[0], "at": name, "rss_gb": round(now, 3),
                       "peak_before_gb": round(max(peak[1], now), 3),
                       "grads_gb": round(grads_gb(model), 3)})
        peak[1] = now

    def on_head(_module: Any, _inputs: Any, output: Any) -> None:
        if output.requires_grad:
            output.register_hook(lambda g: mark("logits grad"))

    def on_first_layer(_module: Any, _inputs: Any, output: Any) -> None:
        out = output[0] if isinstance(output, tuple) else output
        if out.requires_grad:
            out.register_hook(lambda g: mark("lowest layer grad"))

    def before_forward(_module: Any, _args: Any) -> None:
        step[0] += 1
        mark("before forward")

    model.get_output_embeddings().register_forward_hook(on_head)
    model.model.layers[0].register_forward_hook(on_first_layer)
    model.register_forward_pre_hook(before_forward)
    vocab = model.config.get_text_config().vocab_size
    ids = torch.randint(10, vocab - 10, (batch * steps, seq)).tolist()
    rows = [{"input_ids": r, "labels": [-100] * (seq - labelled) + r[seq - labelled:]} for r in ids]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.002):
            now = rss()
            peak[0], peak[1] = max(peak[0], now), max(peak[1], now)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    opts = LoopOptions.model_validate({"max_steps": steps, "cpu_max_steps": steps, "batch_size": batch,
                                       "learning_rate": 1e-5, "eval_every": 1000})
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out, on_train_step(lambda *_: mark("after optimizer step")), \
            _optimizer_marks(mark):
        fit_rows(model, base.tokenizer.pad_token_id or 0, rows, [], opts, Path(out), 0, "cpu")
    stop.set()
    return {"model": model_ref, "batch": batch, "seq": seq, "labelled": labelled, "steps": steps,
            "peak_rss_gb": round(peak[0], 3),
            "wall_s": round(time.perf_counter() - t0, 1), "events": events}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    plan = planned(args.model)
    result = probe(args.model, args.batch, plan["seq"], args.steps, plan["labelled"])
    result["command"] = f"python benchmarks/memory_timeline.py --model {args.model} --steps {args.steps}"
    result["plan"] = plan
    print(json.dumps(result))
    path = args.out / "memory_timeline.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results[args.model] = result
    path.write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "memory_timeline.md").write_text(markdown(results))


def markdown(results: dict[str, Any]) -> str:
    """Per model: the planned and measured peak, and the RSS at each point of the last step."""
    out = ["# Full fine-tuning's memory through a training step (CPU, RSS)", "",
           "Written by `benchmarks/memory_timeline.py`; the harness's training loop on synthetic rows at the batch "
           "and length `harness plan` uses for full-ft on legal-qa, labelled on as many positions as the plan's worst "
           "batch computes logits at. RSS in GB; \"peak since the previous point\" "
           "from a 2 ms sampler; gradients: the bytes of parameters holding a gradient at that point.", ""]
    for model, r in results.items():
        plan = r["plan"]
        terms = ", ".join(f"{k} {v:.2f}" for k, v in sorted(plan["terms_gb"].items(), key=lambda kv: -kv[1]) if v)
        out += [f"## {model}: batch {r['batch']} x {r['seq']} tokens, the last {r.get('labelled', r['seq'])} "
                f"labelled, {r['steps']} steps", "",
                f"Command: `{r['command']}`", "",
                f"Measured peak {r['peak_rss_gb']:.2f} GB; planned {plan['peak_gb']:.2f} GB "
                f"({100 * (plan['peak_gb'] / r['peak_rss_gb'] - 1):+.1f}%): {terms}.", "",
                "| step | point | RSS | peak since the previous point | gradients |", "|---|---|---|---|---|"]
        out += [f"| {e['step']} | {e['at']} | {e['rss_gb']:.2f} | {e['peak_before_gb']:.2f} | {e['grads_gb']:.2f} |"
                for e in r["events"]]
        out.append("")
    return "\n".join(out)


def planned(model: str) -> dict[str, Any]:
    """`harness plan`'s full-ft cell for legal-qa on `model`: its peak and the peak's terms in GB (no
    embedder: this process never loads one)."""
    from harness.api import plan

    [cell] = plan({"suite": "legal-qa", "model": model, "strategies": ["full-ft"]})
    assert cell.shapes is not None and cell.shapes.train_logits is not None
    return {"peak_gb": round(cell.memory.peak / 1e9, 3), "phase": cell.memory.phase,
            "seq": cell.shapes.train_seq, "labelled": cell.shapes.train_logits,
            "terms_gb": {k: round(v / 1e9, 3) for k, v in cell.memory.terms.items()}}


if __name__ == "__main__":
    main()
