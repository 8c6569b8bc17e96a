"""The machine's fp32 matmul ceiling and the default model's cost per token, hence the tokens/s
roofline; then every throughput found in the other results files as a fraction of it.

Peak: the best FLOP/s of large square fp32 `torch.matmul`s on all of torch's threads.
Cost per token (forward), with N = parameters outside the token embedding (the tied LM head is the
same tensor, so it is not counted twice):

    2 N  +  4 n_layers d_attn n_att  +  s 2 d_model vocab

where d_attn = heads x head dim, n_att = keys the token attends to (QK^T and AV: 2 FLOPs per
multiply-add each) and s = the share of tokens whose logits are computed (the LM head: lm-eval and
generation compute every position's, the harness's context pass only each context's last).
mc_vs_lmeval.json records n_att and s of each scorer's real work (token-weighted means); the other
results use their mean lengths (a causal pass over L tokens attends to (L + 1) / 2 keys per token).
A throughput's fraction of the roofline is its achieved FLOP/s over the peak; the headline
ceiling is for `--context` keys and no LM head.

    python benchmarks/roofline.py [--results benchmarks/results] [--context 512]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.model.load import load_runtime
from harness.model.spec import resolve_model

SCORING_TARGET = 0.70  # issue 9: scoring throughput as a share of the roofline


@dataclass(frozen=True)
class ModelCost:
    non_embedding_params: int
    n_layers: int
    d_attn: int
    d_model: int
    vocab: int

    def flops_per_token(self, attended: float, logits_share: float) -> float:
        head = 2 * self.d_model * self.vocab * logits_share
        return 2 * self.non_embedding_params + 4 * self.n_layers * self.d_attn * attended + head


@dataclass(frozen=True)
class Throughput:
    source: str
    what: str
    tokens_per_s: float
    attended: float
    """Mean keys attended per token."""
    logits_share: float
    """Share of tokens whose logits are computed."""
    passes: float = 1.0
    """Forward-equivalents per token (training: forward plus backward)."""
    target: float | None = None


def matmul_flops(sizes: tuple[int, ...], repeats: int) -> dict[int, float]:
    """Best FLOP/s of an n x n by n x n fp32 matmul for each n."""
    import torch

    best = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.matmul(a, b)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.matmul(a, b)
            times.append(time.perf_counter() - t0)
        best[n] = 2 * n**3 / min(times)
    return best


def model_cost() -> ModelCost:
    model = load_runtime(resolve_model(None), "cpu").model
    cfg = model.config
    total = sum(p.numel() for p in model.parameters())  # a tied LM head is listed once
    embed = model.get_input_embeddings().weight.numel()
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return ModelCost(total - embed, cfg.num_hidden_layers, cfg.num_attention_heads * head_dim, cfg.hidden_size,
                     cfg.vocab_size)


def mc_rows(r: dict[str, Any]) -> list[Throughput]:
    rows = []
    for s in r["settings"]:
        rows.append(Throughput("mc_vs_lmeval", f"harness scoring, {s['setting']}", s["harness_forward_tokens_per_s"],
                               s["harness_keys_per_token"], s["harness_logits_share"], target=SCORING_TARGET))
        rows.append(Throughput("mc_vs_lmeval", f"lm-eval scoring, {s['setting']}", s["lmeval_forward_tokens_per_s"],
                               s["lmeval_keys_per_token"], s["lmeval_logits_share"]))
    return rows


def generate_rows(r: dict[str, Any]) -> list[Throughput]:
    att = r["mean_prompt_tokens"] + r["mean_output_tokens"] / 2  # a generated token sees the prompt and earlier output
    return [Throughput("generate", "per-example generate loop (generated tokens)", r["loop_tokens_per_s"], att, 1.0),
            Throughput("generate", f"ModelRuntime.generate batch {r['batch_size']} (generated tokens)",
                       r["batched_tokens_per_s"], att, 1.0)]


def train_rows(r: dict[str, Any]) -> list[Throughput]:
    att = (r.get("harness_tokens", r.get("tokens", 0)) / (r["steps"] * r["batch_size"]) + 1) / 2
    # LoRA: forward plus the backward through activations; frozen weights get no gradient (2 forwards)
    return [Throughput("train_lora", "plain peft + Trainer (LoRA)", r["plain_tokens_per_s"], att, 1.0, 2.0),
            Throughput("train_lora", "harness lora (logits at the labelled positions)", r["harness_tokens_per_s"], att,
                       r.get("harness_logits_share", 1.0), 2.0)]


READERS = {"mc_vs_lmeval.json": mc_rows, "generate.json": generate_rows, "train_lora.json": train_rows}


def found_throughputs(results: Path) -> list[Throughput]:
    rows = []
    for name, read in READERS.items():
        path = results / name
        if path.is_file():
            rows += read(json.loads(path.read_text()))
    return rows


def assess(t: Throughput, cost: ModelCost, peak: float) -> dict[str, Any]:
    flops = cost.flops_per_token(t.attended, t.logits_share) * t.passes
    fraction = t.tokens_per_s * flops / peak
    return {**asdict(t), "gflop_per_token": round(flops / 1e9, 4), "ceiling_tokens_per_s": round(peak / flops, 1),
            "fraction_of_ceiling": round(fraction, 3), "met": None if t.target is None else fraction >= t.target}


def markdown(r: dict[str, Any]) -> str:
    c = r["model"]
    lines = [f"fp32 matmul peak {r['peak_gflops']} GFLOP/s ({r['torch_threads']} threads; best of "
             f"{', '.join(f'{n}: {g}' for n, g in r['matmul_gflops'].items())}). Default model: "
             f"{c['non_embedding_params']:,} non-embedding parameters, {r['gflop_per_token']} GFLOP/token at "
             f"{r['context']} attended keys without the LM head, so at most {r['ceiling_tokens_per_s']} tokens/s.", "",
             "| source | throughput | tokens/s | keys attended | GFLOP/token | ceiling tokens/s | of ceiling |",
             "|---|---|---|---|---|---|---|"]
    for a in r["throughputs"]:
        target = "" if a["target"] is None else f" (target {a['target']:.0%})"
        lines.append(f"| {a['source']} | {a['what']} | {a['tokens_per_s']} | {a['attended']:.0f} | "
                     f"{a['gflop_per_token']} | {a['ceiling_tokens_per_s']} | {a['fraction_of_ceiling']:.0%}{target} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results"), help="read and write here")
    ap.add_argument("--sizes", default="1024,2048,4096", help="square matmul sizes")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--context", type=float, default=512, help="keys attended for the headline ceiling")
    args = ap.parse_args()
    import torch

    gflops = matmul_flops(tuple(int(n) for n in args.sizes.split(",")), args.repeats)
    peak = max(gflops.values())
    cost = model_cost()
    per_token = cost.flops_per_token(args.context, logits_share=0.0)
    result = {"torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
              "matmul_gflops": {n: round(f / 1e9, 1) for n, f in gflops.items()}, "peak_gflops": round(peak / 1e9, 1),
              "model": asdict(cost), "context": args.context, "gflop_per_token": round(per_token / 1e9, 4),
              "ceiling_tokens_per_s": round(peak / per_token, 1),
              "throughputs": [assess(t, cost, peak) for t in found_throughputs(args.results)]}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "roofline.json").write_text(json.dumps(result, indent=1))
    (args.results / "roofline.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
