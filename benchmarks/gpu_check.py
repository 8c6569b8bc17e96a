"""The GPU check (issue 23): one short run on a lent GPU that shows the harness's mixed precision trains
as fp32 does, and measures what the GPU gives: training tokens/s and model FLOPs utilization (MFU),
scoring and generation tokens/s, the automatic batch size, QLoRA's paged 8-bit optimizer, and the
memory planner's predictions against measured peaks.

    python benchmarks/gpu_check.py [--out benchmarks/results]     # CUDA: the full check, under 8 minutes
    python benchmarks/gpu_check.py --dry [--out /tmp/gpu_dry]     # CPU: a tiny model, every code path, < 60 s
    python benchmarks/gpu_check.py --fetch-wheels                 # here: wheels the device image lacks
    benchmarks/gpu_check.sh                                       # there: install the carried wheels, then run

The model is a Llama built from a config with random weights (default about 0.47B parameters: hidden
1024, 24 layers, MLP 4096, 16 heads, vocabulary 32000; the count is printed), saved and loaded back
through harness.model.load.load_runtime (bf16 on CUDA, as every compare loads its base), with a
word-level tokenizer (`w17` is token 17), so every length is exact. Nothing is downloaded.

Sections, each `pass`, `fail` or `skipped: <why>` in gpu_check.json and the table in gpu_check.md
(`gpu_check_dry.*` with --dry):
- precision: full-ft, lora and norm-bias (each built by its strategy's `trainable_model`) trained a
  few steps through harness.model.training.fit_rows with precision="bf16-mixed" on the bf16 base,
  against an fp32 run on the fp32 base. Norm weights must move within 10% of the fp32 deltas (per
  tensor); full-ft deltas must point the fp32 way (cosine > 0.99, at least half the size), LoRA's
  too within its noise (cosine > 0.95, size within 10%: see LORA_MIN_COSINE).
- broken_control: norm-bias again with the fp32 master copy switched off (training.master_weights a
  no-op: the pure-bf16 defect); passes when the precision check catches it.
- train_throughput: full-ft and LoRA at bf16-mixed, tokens/s over timed steps after warm-up; MFU =
  (6 N for full-ft, 4 N + 2 trainable for LoRA) x tokens/s / peak, N the matmul parameters
  (harness.model.throughput.matmul_params); peak --peak-tflops on CUDA (790: the H200's dense bf16
  measured there), this CPU's measured fp32 matmul rate on CPU. Full-ft below --mfu-target (0.40)
  on CUDA fails and prints a torch.profiler summary of two more steps (top ops by CUDA time).
- scoring (ModelRuntime.loglikelihood_batch), generation (ModelRuntime.generate, batched greedy),
  auto_batch (batch_for(None, ...) and one scoring pass at the batch it chose), qlora_paged_8bit
  (the qlora strategy's 4-bit base, optim="paged_adamw_8bit"; CUDA and bitsandbytes only),
  planner (compare_planner: the measured training peaks against harness.model.plan's predictions,
  judged within 25% on CUDA, where the fp32 base is moved off the GPU first so that it holds what a
  compare's would; skipped while no planner exists), smollm2 (precision and scoring on SmolLM2-135M
  when its converted weights are here or given by --smollm2).

The device machine lacks pydantic, datasets and the transformers/peft versions the project pins:
`--fetch-wheels` downloads them (and bitsandbytes when the tree still fits the 64 MiB the device
tool carries) into build/gpu-wheels, which gpu_check.sh installs there. A section whose package is
missing is skipped with the package's name rather than crashing.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib
import importlib.util
import inspect
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WHEEL_DIR = ROOT / "build" / "gpu-wheels"
WHEELS = ("pydantic", "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions", "datasets",
          "dill", "multiprocess", "transformers", "peft")
"""What the device image lacks or holds in another version (its KINDS.md list), at this venv's versions."""
OPTIONAL_WHEELS = ("bitsandbytes",)
"""Carried only while the tree still fits (bitsandbytes alone is about 41 MiB)."""
CARRY_LIMIT = 62 * 2**20
"""The device tool carries 64 MiB of tree and carried paths; a little is left for what others add."""
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
NORM_TOLERANCE = 0.10
"""Each norm weight's bf16-mixed delta within 10% of its fp32 delta (tests/test_precision.py)."""
MIN_COSINE = 0.99
"""Full-ft: cosine between the bf16-mixed and the fp32 deltas (tests/test_precision.py)."""
LORA_MIN_COSINE = 0.95
"""LoRA: its adapters are fp32 in both runs (peft keeps them so); only bf16 compute differs, and AdamW's
first steps move every element by about the learning rate whatever its gradient's size, so elements
whose gradient is mostly rounding (q_proj's, at random init) may flip sign. In this CPU's bf16
emulation the LoRA cosine fell from 0.996 (140k parameters) to 0.987 (66M); hence a looser bound,
with the size held within 10%."""
PLANNER_TOLERANCE = 0.25
"""A planner's predicted peak within 25% of the measured one."""
LEARNING_RATES = {"norm-bias": 1e-3, "full-ft": 1e-4, "lora": 1e-3}
"""At 1e-3 a bf16 norm weight at 1.0 cannot move (its half-ulp is 2e-3): the defect shows."""
STRATEGIES = {"norm-bias": ("selective", "NormBias"), "full-ft": ("weights", "FullFinetune"),
              "lora": ("weights", "Lora"), "qlora": ("weights", "Qlora")}
SECTIONS = ("precision", "broken_control", "train_throughput", "scoring", "generation", "auto_batch",
            "qlora_paged_8bit", "planner", "smollm2")


class Skip(Exception):
    """A section that cannot run here; the message says why."""


@dataclass(frozen=True)
class Plan:
    """Sizes of one mode: the full check on CUDA, or --dry on CPU (tiny, seconds)."""

    device: str
    dry: bool
    config: dict[str, int]
    precision_batch: int
    precision_seq: int
    precision_steps: int
    train_batch: int
    train_seq: int
    warmup_steps: int
    timed_steps: int
    profile_steps: int
    score_requests: int
    score_context: int
    score_batch: int
    gen_prompts: int
    gen_prompt_len: int
    gen_new_tokens: int
    gen_batch: int
    qlora_batch: int
    qlora_seq: int
    peak_tflops: float
    mfu_target: float
    smollm2: Path | None = None
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gpu-check-")))

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")


def make_plan(args: argparse.Namespace) -> Plan:
    import torch

    device = "cpu" if args.dry else ("cuda" if torch.cuda.is_available() else "")
    if not device:
        raise SystemExit("no CUDA device here: run with --dry for the CPU dry mode")
    if args.dry:
        torch.set_num_threads(1)  # a tiny model: more threads only wait on each other (4x slower on a busy machine)
        config = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=512)
        sizes: dict[str, Any] = dict(precision_batch=2, precision_seq=32, precision_steps=4, train_batch=2,
                                     train_seq=32, warmup_steps=1, timed_steps=2, profile_steps=1, score_requests=8,
                                     score_context=24, score_batch=4, gen_prompts=4, gen_prompt_len=8,
                                     gen_new_tokens=8, gen_batch=4, qlora_batch=2, qlora_seq=32)
    else:
        config = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                      num_key_value_heads=16, vocab_size=32000)
        sizes = dict(precision_batch=4, precision_seq=256, precision_steps=4, train_batch=16, train_seq=1024,
                     warmup_steps=4, timed_steps=16, profile_steps=2, score_requests=512, score_context=512,
                     score_batch=32, gen_prompts=128, gen_prompt_len=128, gen_new_tokens=64, gen_batch=64,
                     qlora_batch=8, qlora_seq=512)
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    if args.num_attention_heads is not None:
        config["num_key_value_heads"] = args.num_attention_heads
    for key in ("train_batch", "train_seq", "score_batch"):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    return Plan(device, args.dry, config, peak_tflops=args.peak_tflops, mfu_target=args.mfu_target,
                smollm2=find_smollm2(args.smollm2, args.dry), **sizes)


# ---------------------------------------------------------------- packages and the harness


def need(*packages: str) -> None:
    """Skip the section unless every package imports here."""
    for name in packages:
        if importlib.util.find_spec(name) is None:
            raise Skip(f"{name} not installed (carry it: python benchmarks/gpu_check.py --fetch-wheels)")
        try:
            importlib.import_module(name)
        except Exception as e:  # installed but broken here (a missing dependency, another CUDA)
            raise Skip(f"{name} does not import here: {type(e).__name__}: {str(e).splitlines()[0]}") from None


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def importable_harness() -> None:
    """The harness from this checkout, and the built-in strategies as `harness_strategies` even where
    the project is not installed (the device machine gets the working tree, not the package)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if importlib.util.find_spec("harness_strategies") is None:
        spec = importlib.util.spec_from_file_location("harness_strategies", ROOT / "strategies" / "__init__.py",
                                                      submodule_search_locations=[str(ROOT / "strategies")])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["harness_strategies"] = module
        spec.loader.exec_module(module)


def strategy(name: str) -> Any:
    """An instance of the built-in strategy `name` with its default options."""
    need("pydantic", "peft")
    module, cls_name = STRATEGIES[name]
    cls = getattr(importlib.import_module(f"harness_strategies.{module}"), cls_name)
    return cls(cls.Options())


def free_memory() -> None:
    """Give freed GPU memory back between runs (on CPU nothing to do: a collection costs a second there)."""
    import torch

    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


# ---------------------------------------------------------------- the model


def word_tokenizer(vocab_size: int) -> Any:
    """`w<i>` is token i (a word-level vocabulary: lengths are exact), with ChatML specials."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS)} | {f"w{i}": i for i in range(len(SPECIALS), vocab_size)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=SPECIALS[0]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token="<|im_start|>", unk_token="<|endoftext|>")
    fast.chat_template = CHATML
    return fast


def parameter_count(c: dict[str, int]) -> dict[str, int]:
    """A Llama's parameters from its config (untied head, no biases)."""
    h, inter, layers, vocab = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
    kv = h // c["num_attention_heads"] * c["num_key_value_heads"]
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * inter + 2 * h
    return {"embedding": vocab * h, "per_layer": per_layer, "layers": layers * per_layer, "final_norm": h,
            "head": vocab * h, "total": 2 * vocab * h + layers * per_layer + h}


def build_model(folder: Path, plan: Plan) -> dict[str, Any]:
    """A Llama with random weights from `plan.config` and its tokenizer, saved to `folder`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = word_tokenizer(plan.config["vocab_size"])
    config = LlamaConfig(**plan.config, max_position_embeddings=4096, tie_word_embeddings=False,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id)
    torch.manual_seed(0)
    with torch.device(plan.device):
        model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    counted = sum(p.numel() for p in model.parameters())
    formula = parameter_count(plan.config)
    del model
    free_memory()
    return {"status": "pass" if counted == formula["total"] else "fail", "config": plan.config,
            "parameters": counted, "formula": formula,
            "summary": f"{counted:,} parameters ({counted / 1e9:.3g}B; the formula gives {formula['total']:,}), "
            f"Llama with random weights: {json.dumps(plan.config)}"}


@dataclass
class Bases:
    """The model in fp32 and in bf16 (as load_runtime loads it on CUDA), and what serves on this device."""

    spec: Any
    fp32: Any
    bf16: Any

    def serving(self, device: str) -> Any:
        return self.bf16 if device.startswith("cuda") else self.fp32  # load_runtime's default dtype per device


def load_bases(folder: Path, device: str) -> Bases:
    from harness.model.load import load_runtime
    from harness.model.spec import resolve_model

    spec = resolve_model(str(folder))
    return Bases(spec, load_runtime(spec, device, dtype="float32"), load_runtime(spec, device, dtype="bfloat16"))


def token_rows(n: int, seq: int, vocab: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """`n` training rows of `seq` random tokens each, loss on every token (no padding)."""
    import numpy as np

    ids = np.random.default_rng(seed).integers(len(SPECIALS), vocab, size=(n, seq)).tolist()
    return [{"input_ids": r, "labels": list(r)} for r in ids]


def vocab_of(rt: Any) -> int:
    config = rt.model.config.get_text_config() if hasattr(rt.model.config, "get_text_config") else rt.model.config
    return int(min(config.vocab_size, len(rt.tokenizer)))


def loop_options(plan: Plan, steps: int, batch: int, seq: int, lr: float, precision: str) -> Any:
    from harness.model.training import LoopOptions

    return LoopOptions(max_steps=steps, batch_size=batch, max_seq_len=max(16, seq), learning_rate=lr,
                       cpu_learning_rate=None, cpu_max_steps=0, eval_every=100_000, precision=precision)


# ---------------------------------------------------------------- precision


@contextlib.contextmanager
def pure_bf16() -> Iterator[None]:
    """The defect the precision check exists to catch: no fp32 master copy of the trainable weights."""
    import harness.model.training as training

    kept = training.master_weights
    training.master_weights = lambda model: None
    try:
        yield
    finally:
        training.master_weights = kept


def trained_deltas(name: str, base: Any, rows: list[dict[str, list[int]]], o: Any, plan: Plan) -> tuple[dict, dict]:
    """Train a fresh copy of `base` the strategy's way; (weight deltas, dtypes) of its trainable parameters."""
    from transformers import set_seed

    from harness.model.training import fit_rows

    set_seed(0)  # peft draws the adapter's initial weights from the global generator
    model = strategy(name).trainable_model(None, base)
    start = {n: p.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad}
    out = plan.work / f"train-{name}-{time.monotonic_ns()}"
    try:
        fit_rows(model, base.tokenizer.pad_token_id, rows, [], o, out, 0, plan.device)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    deltas = {n: p.detach().float() - start[n] for n, p in trained.items()}
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in trained.values()})
    del model, start, trained
    free_memory()
    return deltas, {"trainable_dtypes": dtypes}


def judge(kind: str, ref: dict[str, Any], got: dict[str, Any]) -> dict[str, Any]:
    """Whether `got` (bf16-mixed) moved as `ref` (fp32): per-tensor norms for norm weights, the cosine of
    all deltas for full-ft and LoRA."""
    dot = sum(float((ref[n].double() * got[n].double()).sum()) for n in ref)
    ref_sq = sum(float(ref[n].double().pow(2).sum()) for n in ref)
    got_sq = sum(float(got[n].double().pow(2).sum()) for n in ref)
    cosine = dot / math.sqrt(ref_sq * got_sq) if ref_sq and got_sq else 0.0
    result: dict[str, Any] = {"cosine": round(cosine, 5), "norm_ratio": round(math.sqrt(got_sq / ref_sq), 4)
                              if ref_sq else None, "tensors": len(ref)}
    if kind == "norm-bias":
        errors = {n: abs(got[n].norm().item() / ref[n].norm().item() - 1) for n in ref if ref[n].norm().item() > 1e-3}
        worst = max(errors.items(), key=lambda kv: kv[1]) if errors else ("", float("inf"))
        result |= {"worst_tensor": worst[0], "worst_norm_error": round(worst[1], 4),
                   "ok": bool(errors) and len(errors) == len(ref) and worst[1] <= NORM_TOLERANCE,
                   "criterion": f"every norm weight's delta within {NORM_TOLERANCE:.0%} of fp32's"}
    elif kind == "lora":
        ratio = math.sqrt(got_sq / ref_sq) if ref_sq else 0.0
        result |= {"ok": cosine > LORA_MIN_COSINE and abs(ratio - 1) <= NORM_TOLERANCE,
                   "criterion": f"delta cosine > {LORA_MIN_COSINE} and size within {NORM_TOLERANCE:.0%} of fp32's"}
    else:
        result |= {"ok": cosine > MIN_COSINE and ref_sq > 0 and got_sq > 0.25 * ref_sq,
                   "criterion": f"delta cosine > {MIN_COSINE} and size at least half of fp32's"}
    return result


def precision_pair(name: str, bases: Bases, plan: Plan, broken: bool = False) -> dict[str, Any]:
    """One strategy trained fp32 on the fp32 base and bf16-mixed on the bf16 base (or, `broken`, pure bf16)."""
    rows = token_rows(plan.precision_batch * plan.precision_steps, plan.precision_seq, vocab_of(bases.fp32))
    lr = LEARNING_RATES[name]
    kw = dict(steps=plan.precision_steps, batch=plan.precision_batch, seq=plan.precision_seq, lr=lr)
    ref, _ = trained_deltas(name, bases.fp32, rows, loop_options(plan, precision="fp32", **kw), plan)
    with pure_bf16() if broken else contextlib.nullcontext():
        got, dtypes = trained_deltas(name, bases.bf16, rows, loop_options(plan, precision="bf16-mixed", **kw), plan)
    verdict = judge(name, ref, got) | dtypes | {"learning_rate": lr, "steps": plan.precision_steps,
                                                "batch": plan.precision_batch, "seq": plan.precision_seq}
    if not broken:
        verdict["ok"] = verdict["ok"] and verdict["trainable_dtypes"] == ["float32"]  # the master copy is fp32
    return verdict


def precision_section(bases: Bases, plan: Plan) -> dict[str, Any]:
    need("pydantic", "datasets", "peft")
    results = {name: precision_pair(name, bases, plan) for name in ("norm-bias", "full-ft", "lora")}
    rows = [(f"precision: {name}", "pass" if r["ok"] else "fail", _precision_figures(r)) for name, r in results.items()]
    return {"status": "pass" if all(r["ok"] for r in results.values()) else "fail", "strategies": results,
            "rows": rows}


def _precision_figures(r: dict[str, Any]) -> str:
    text = f"cosine {r['cosine']}, size {r['norm_ratio']}x fp32"
    if "worst_norm_error" in r:
        text += f", worst norm delta off by {r['worst_norm_error']:.1%}"
    return text + f" (trainable {'/'.join(r['trainable_dtypes'])})"


def control_section(bases: Bases, plan: Plan) -> dict[str, Any]:
    need("pydantic", "datasets", "peft")
    r = precision_pair("norm-bias", bases, plan, broken=True)
    caught = not r["ok"]
    return {"status": "pass" if caught else "fail", "caught": caught, "result": r,
            "summary": ("caught: " if caught else "NOT caught: ") + "norm-bias with master_weights a no-op, "
            + _precision_figures(r)}


# ---------------------------------------------------------------- training throughput


class StepClock:
    """Times optimizer steps (harness.model.training.on_train_step) and counts the tokens of training
    forwards; after the timed steps, profiles a few more when `should_profile` says so."""

    def __init__(self, plan: Plan, should_profile: Callable[[float], bool]):
        self.plan = plan
        self.should_profile = should_profile
        self.tokens = 0
        self.batch_shape: tuple[int, ...] | None = None
        self.marks: list[tuple[int, float, int]] = []
        self.profiler: Any = None
        self.profile: list[dict[str, Any]] = []

    @property
    def steps(self) -> int:
        return self.plan.warmup_steps + self.plan.timed_steps + self.plan.profile_steps

    def count(self, module: Any, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if module.training and ids is not None:
            self.tokens += int(ids.numel())
            self.batch_shape = self.batch_shape or tuple(ids.shape)

    def __call__(self, step: int, planned: int, loss: float | None) -> None:
        sync(self.plan.device)
        self.marks.append((step, time.perf_counter(), self.tokens))
        timed_end = self.plan.warmup_steps + self.plan.timed_steps
        if step == timed_end and self.should_profile(self.tokens_per_s()):
            self.profiler = start_profiler(self.plan.device)
        if self.profiler is not None and step == timed_end + self.plan.profile_steps:
            self.profiler.stop()
            self.profile = top_ops(self.profiler, self.plan.device)
            self.profiler = None

    def tokens_per_s(self) -> float:
        by_step = {s: (t, n) for s, t, n in self.marks}
        a, b = self.plan.warmup_steps, self.plan.warmup_steps + self.plan.timed_steps
        if a not in by_step or b not in by_step:
            raise RuntimeError(f"training stopped before step {b}: {len(self.marks)} steps ran")
        return (by_step[b][1] - by_step[a][1]) / (by_step[b][0] - by_step[a][0])


def start_profiler(device: str) -> Any:
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    prof = profile(activities=activities)
    prof.start()
    return prof


def top_ops(prof: Any, device: str, limit: int = 12) -> list[dict[str, Any]]:
    """The ops that took the most time (self CUDA time on CUDA, self CPU time on CPU), with their share."""

    def own(e: Any) -> float:
        if device.startswith("cuda"):
            return float(getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0.0))
        return float(e.self_cpu_time_total)

    events = list(prof.key_averages())
    total = sum(own(e) for e in events) or 1.0
    top = sorted(events, key=own, reverse=True)[:limit]
    return [{"op": e.key[:80], "self_ms": round(own(e) / 1e3, 3), "share": round(own(e) / total, 4),
             "calls": int(e.count)} for e in top]


def peak_flops(plan: Plan) -> tuple[float, str]:
    """The peak MFU divides by: --peak-tflops on CUDA, this CPU's measured fp32 matmul rate on CPU."""
    from harness.model.throughput import flops_per_second

    if plan.cuda:
        return plan.peak_tflops * 1e12, f"--peak-tflops {plan.peak_tflops:g}"
    return flops_per_second("cpu"), "this CPU's measured fp32 matmul rate"


def timed_training(model: Any, base: Any, plan: Plan, clock: StepClock, batch: int, seq: int,
                   optim: str | None = None) -> dict[str, Any]:
    """Train `model` bf16-mixed through fit_rows for clock.steps steps; tokens/s, shape and peak memory."""
    from harness.core.measure import measure
    from harness.model.training import fit_rows, on_train_step

    rows = token_rows(batch * clock.steps, seq, vocab_of(base), seed=1)
    o = loop_options(plan, clock.steps, batch, seq, 2e-5, "bf16-mixed")
    out = plan.work / f"throughput-{time.monotonic_ns()}"
    handle = model.register_forward_pre_hook(clock.count, with_kwargs=True)
    try:
        with on_train_step(clock), measure(plan.device) as m:
            fit_rows(model, base.tokenizer.pad_token_id, rows, [], o, out, 0, plan.device, optim)
    finally:
        handle.remove()
        shutil.rmtree(out, ignore_errors=True)
    tps = clock.tokens_per_s()
    shape = clock.batch_shape or (batch, seq)
    return {"tokens_per_s": round(tps, 1), "batch": shape[0], "seq": shape[1], "steps": clock.steps,
            "timed_steps": plan.timed_steps, "warmup_steps": plan.warmup_steps, "peak_bytes": m.peak_mem_bytes}


def throughput_run(name: str, bases: Bases, plan: Plan, peak: float) -> dict[str, Any]:
    """One strategy's training throughput and MFU at bf16-mixed on the bf16 base."""
    from harness.model.throughput import matmul_params
    from harness.strategy.protocol import count_params

    n = matmul_params(bases.bf16.model)
    chosen = strategy(name)
    model = chosen.trainable_model(None, bases.bf16)
    trainable = count_params(model)[0]
    per_token = 6 * n if name == "full-ft" else 4 * n + 2 * trainable
    profile_below = plan.mfu_target if plan.cuda else float("inf")  # dry: profile anyway, to exercise it
    clock = StepClock(plan, lambda tps: name == "full-ft" and per_token * tps / peak < profile_below)
    result = timed_training(model, bases.bf16, plan, clock, plan.train_batch, plan.train_seq)
    del model
    free_memory()
    mfu = per_token * result["tokens_per_s"] / peak
    return result | {"matmul_params": n, "trainable_params": trainable, "flops_per_token": per_token,
                     "mfu": round(mfu, 4), "profile": clock.profile, "options": adapter_options(chosen)}


def adapter_options(chosen: Any) -> dict[str, Any]:
    """The options that size a strategy's adapters (what a memory planner needs of them)."""
    return {k: v for k, v in chosen.options.model_dump().items() if k in ("r", "alpha", "dropout", "target_modules")}


def train_throughput_section(bases: Bases, plan: Plan) -> dict[str, Any]:
    need("pydantic", "datasets", "peft")
    peak, peak_source = peak_flops(plan)
    runs = {name: throughput_run(name, bases, plan, peak) for name in ("full-ft", "lora")}
    full = runs["full-ft"]["mfu"]
    status = "pass" if not plan.cuda or full >= plan.mfu_target else "fail"
    rows = [(f"training {name} (bf16-mixed)", status if name == "full-ft" else "pass",
             f"{r['tokens_per_s']:,.0f} tokens/s at batch {r['batch']} x {r['seq']}, MFU {r['mfu']:.1%}, "
             f"peak {r['peak_bytes'] / 2**30:.2f} GiB") for name, r in runs.items()]
    out: dict[str, Any] = {"status": status, "runs": runs, "peak_flops": peak, "peak_source": peak_source,
                           "mfu_target": plan.mfu_target if plan.cuda else None, "rows": rows}
    if plan.cuda:
        from harness.model.throughput import flops_per_second

        out["measured_matmul_tflops"] = round(flops_per_second(plan.device) / 1e12, 1)
    if status == "fail":
        out["reason"] = f"full-ft MFU {full:.1%} below the {plan.mfu_target:.0%} target"
    if runs["full-ft"]["profile"]:
        print_profile(runs["full-ft"]["profile"], plan.device)
    return out


def print_profile(ops: list[dict[str, Any]], device: str) -> None:
    what = "CUDA" if device.startswith("cuda") else "CPU"
    print(f"   where full-ft's time goes (top ops by self {what} time, profiled steps):")
    for op in ops:
        print(f"   {op['share']:6.1%} {op['self_ms']:10.2f} ms {op['calls']:6d} calls  {op['op']}")


# ---------------------------------------------------------------- scoring, generation, automatic batch


def words(ids: Any) -> str:
    return " ".join(f"w{int(i)}" for i in ids)


def score_requests(plan: Plan, vocab: int, seed: int = 2) -> list[tuple[str, list[str]]]:
    """Synthetic multiple-choice requests: a context of `score_context` tokens, four 1-3 token choices."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lo = len(SPECIALS)
    return [(words(rng.integers(lo, vocab, plan.score_context)),
             [" " + words(rng.integers(lo, vocab, k)) for k in (1, 2, 3, 2)]) for _ in range(plan.score_requests)]


def request_lengths(rt: Any, requests: list[tuple[str, list[str]]]) -> list[int]:
    """Tokens each request runs through the model: its context and every continuation, as the runtime
    encodes them (a word is a token for the built model's tokenizer, not for SmolLM2's)."""
    lengths = []
    for ctx, conts in requests:
        pairs = [rt.encode_pair(ctx, c) for c in conts]
        lengths.append(len(pairs[0][0]) + sum(len(cont) for _, cont in pairs))
    return lengths


def scoring_section(rt: Any, plan: Plan, batch: int | None = None) -> dict[str, Any]:
    """ModelRuntime.loglikelihood_batch on synthetic requests (after a warm-up batch): tokens/s and MFU."""
    from harness.core.measure import measure
    from harness.model.throughput import matmul_params

    batch = batch or plan.score_batch
    requests = score_requests(plan, vocab_of(rt))
    rt.loglikelihood_batch(requests[:batch], batch_size=batch)
    with measure(plan.device) as m:
        scored = rt.loglikelihood_batch(requests, batch_size=batch)
    tokens = sum(request_lengths(rt, requests))
    finite = all(math.isfinite(x) for s in scored for x in s.logprobs)
    tps = tokens / m.wall_s
    peak, _ = peak_flops(plan)
    mfu = 2 * matmul_params(rt.model) * tps / peak
    return {"status": "pass" if finite else "fail", "tokens_per_s": round(tps, 1),
            "requests_per_s": round(len(requests) / m.wall_s, 2), "requests": len(requests),
            "context_tokens": plan.score_context, "batch": batch, "tokens": tokens, "mfu_forward": round(mfu, 4),
            "peak_bytes": m.peak_mem_bytes, "dtype": str(next(rt.model.parameters()).dtype).removeprefix("torch."),
            "summary": f"{tps:,.0f} tokens/s ({len(requests) / m.wall_s:,.1f} requests/s) at batch {batch}, "
            f"{tokens / len(requests):.0f} tokens a request (context and 4 choices), forward MFU {mfu:.1%}"}


def generation_section(rt: Any, plan: Plan) -> dict[str, Any]:
    """ModelRuntime.generate, batched greedy with a KV cache: generated tokens/s (after a warm-up batch)."""
    import numpy as np

    from harness.core.measure import measure

    rng = np.random.default_rng(3)
    prompts = [words(rng.integers(len(SPECIALS), vocab_of(rt), plan.gen_prompt_len)) for _ in range(plan.gen_prompts)]
    rt.generate(prompts[: plan.gen_batch], 4, batch_size=plan.gen_batch)
    with measure(plan.device) as m:
        out = rt.generate(prompts, plan.gen_new_tokens, batch_size=plan.gen_batch)
    new = sum(g.output_tokens for g in out)
    tps = new / m.wall_s
    return {"status": "pass" if len(out) == len(prompts) and new > 0 else "fail", "tokens_per_s": round(tps, 1),
            "generated_tokens": new, "prompts": len(prompts), "prompt_tokens": plan.gen_prompt_len,
            "max_new_tokens": plan.gen_new_tokens, "batch": plan.gen_batch, "peak_bytes": m.peak_mem_bytes,
            "summary": f"{tps:,.0f} generated tokens/s at batch {plan.gen_batch} ({plan.gen_prompts} prompts of "
            f"{plan.gen_prompt_len} tokens, up to {plan.gen_new_tokens} new)"}


def auto_batch_section(rt: Any, plan: Plan) -> dict[str, Any]:
    """`--batch-size auto`: the batch ModelRuntime.batch_for(None, ...) chooses, and one scoring pass at it."""
    from harness.core.measure import measure
    from harness.model.memory import free_memory_bytes, kv_bytes_per_token

    requests = score_requests(plan, vocab_of(rt), seed=4)
    lengths = request_lengths(rt, requests)
    longest = max(lengths)
    free = free_memory_bytes(plan.device)
    chosen = rt.batch_for(None, longest)
    with measure(plan.device) as m:
        scored = rt.loglikelihood_batch(requests, batch_size=None)
    ok = len(scored) == len(requests) and all(math.isfinite(x) for s in scored for x in s.logprobs)
    return {"status": "pass" if ok else "fail", "chosen_batch": chosen, "longest_tokens": longest,
            "free_bytes_before": free, "kv_bytes_per_token": kv_bytes_per_token(rt.model),
            "peak_bytes": m.peak_mem_bytes, "tokens_per_s": round(sum(lengths) / m.wall_s, 1),
            "summary": f"chose batch {chosen} for {longest}-token requests with {free / 2**30:.1f} GiB free; "
            f"scored {len(scored)} requests without running out of memory, peak {m.peak_mem_bytes / 2**30:.2f} GiB"}


# ---------------------------------------------------------------- QLoRA, planner, SmolLM2


def qlora_section(bases: Bases, plan: Plan) -> dict[str, Any]:
    """QLoRA's 4-bit base with the paged 8-bit AdamW (optim="paged_adamw_8bit"), through fit_rows."""
    if not plan.cuda:
        raise Skip("the paged 8-bit optimizer needs CUDA")
    need("bitsandbytes", "pydantic", "datasets", "peft")
    from harness.core.errors import Unsupported
    from harness.strategy.protocol import RunContext, count_params

    run = RunContext(0, plan.device, plan.work / "qlora", plan.work / "cache", bases.spec, lambda: bases.bf16)
    chosen = strategy("qlora")
    try:
        model = chosen.trainable_model(run, bases.bf16)
    except Unsupported as e:  # what a compare would record as a skipped qlora cell
        raise Skip(str(e)) from None
    start = {n: p.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad}
    clock = StepClock(plan, lambda tps: False)
    result = timed_training(model, bases.bf16, plan, clock, plan.qlora_batch, plan.qlora_seq, "paged_adamw_8bit")
    moved = sum(float((p.detach().float() - start[n]).norm()) for n, p in model.named_parameters() if n in start)
    trainable = count_params(model)[0]
    del model, start
    free_memory()
    ok = math.isfinite(moved) and moved > 0
    return result | {"status": "pass" if ok else "fail", "adapter_delta_norm": moved, "trainable_params": trainable,
                     "optim": "paged_adamw_8bit", "options": adapter_options(chosen),
                     "summary": f"{result['tokens_per_s']:,.0f} tokens/s at batch {result['batch']} x {result['seq']}, "
                     f"peak {result['peak_bytes'] / 2**30:.2f} GiB, adapters moved {moved:.3g}"}


PLANNER_MODULES = ("harness.run.planner", "harness.model.planner")
PLANNER_FUNCTIONS = ("predict_peak_bytes", "predicted_peak_bytes", "peak_bytes", "predict_peak_memory",
                     "predict_memory", "estimate_peak_bytes", "estimate_memory", "plan_memory", "peak_memory")
"""A single-module planner is looked for under these names, with this contract: given a model config, a
strategy name, a batch and a sequence length (and optionally device and precision), the predicted peak
memory in bytes (a number, or an object or dict with `peak_bytes`)."""
PLAN_PACKAGE = "harness.model.plan"
"""The planner package (shape_of, method_for, Shapes, footprint): a cell's predicted peak, term by term."""


def compare_planner(config: Any, measured: list[dict[str, Any]], device: str, judge_ratio: bool = True) -> dict:
    """Each measured training peak (strategy, batch, seq, peak_bytes, options) against the memory planner's
    prediction. The planner is imported lazily, so this starts working once one lands: a single module
    (PLANNER_MODULES, called by its signature) or the harness.model.plan package; with neither this is
    skipped ("no planner yet"). `judge_ratio` False (CPU: process-wide RSS) reports without judging."""
    name, predict = planner_predictor()
    if not measured:
        raise Skip("no measured peaks to compare (the training sections did not run)")
    rows = []
    for m in measured:
        predicted = predict(config, m, device)
        ratio = predicted / m["peak_bytes"] if m["peak_bytes"] else float("inf")
        rows.append({k: v for k, v in m.items() if k != "options"}
                    | {"predicted_bytes": predicted, "ratio": round(ratio, 3),
                       "ok": not judge_ratio or abs(ratio - 1) <= PLANNER_TOLERANCE})
    worst = max(rows, key=lambda r: abs(r["ratio"] - 1))
    status = "pass" if all(r["ok"] for r in rows) else "fail"
    note = "" if judge_ratio else " (CPU: process-wide RSS peaks, not judged)"
    return {"status": status, "planner": name, "runs": rows, "tolerance": PLANNER_TOLERANCE,
            "summary": f"worst predicted/measured peak {worst['ratio']} ({worst['strategy']} at {worst['batch']} x "
            f"{worst['seq']}; {len(rows)} runs, tolerance {PLANNER_TOLERANCE:.0%}){note}"}


def planner_predictor() -> tuple[str, Callable[[Any, dict[str, Any], str], int]]:
    """The planner found here, as (its name, predicted training peak bytes of (config, measurement, device))."""
    for name in PLANNER_MODULES:
        if importlib.util.find_spec(name) is not None:
            fn = planner_function(importlib.import_module(name))
            return f"{fn.__module__}.{fn.__qualname__}", functools.partial(planner_bytes, fn)
    if importlib.util.find_spec(PLAN_PACKAGE) is not None:
        return f"{PLAN_PACKAGE}.footprint", plan_package_bytes
    raise Skip("no planner yet (no harness/run/planner.py, harness/model/planner.py or harness/model/plan/)")


def planner_function(module: Any) -> Callable[..., Any]:
    for fname in PLANNER_FUNCTIONS:
        if callable(getattr(module, fname, None)):
            return getattr(module, fname)  # type: ignore[no-any-return]
    raise Skip(f"{module.__name__} has none of {', '.join(PLANNER_FUNCTIONS)}: teach compare_planner its entry point")


def planner_bytes(fn: Callable[..., Any], config: Any, m: dict[str, Any], device: str) -> int:
    """Call a single-module planner with the arguments its signature names; its answer in bytes."""
    values = {"config": config, "model_config": config, "model": config, "strategy": m["strategy"],
              "method": m["strategy"], "batch_size": m["batch"], "batch": m["batch"], "seq_len": m["seq"],
              "seq": m["seq"], "max_seq_len": m["seq"], "sequence_length": m["seq"], "device": device,
              "precision": "bf16-mixed", "dtype": "bfloat16", "options": m.get("options", {})}
    params = inspect.signature(fn).parameters
    missing = [k for k, p in params.items() if p.default is p.empty and k not in values
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if missing:
        raise Skip(f"{fn.__qualname__} asks for {missing}: teach compare_planner those arguments")
    answer = fn(**{k: values[k] for k in params if k in values})
    if isinstance(answer, dict):
        answer = answer.get("peak_bytes")
    answer = getattr(answer, "peak_bytes", answer)
    if not isinstance(answer, int | float):
        raise Skip(f"{fn.__qualname__} returned {type(answer).__name__}, not bytes or an object with peak_bytes")
    return int(answer)


def plan_package_bytes(config: Any, m: dict[str, Any], device: str) -> int:
    """harness.model.plan's predicted training peak: footprint(shape_of(config), method_for(strategy, ...),
    Shapes(train_batch, train_seq), cuda).train_peak."""
    try:
        from harness.model.plan import Shapes, footprint, method_for, shape_of
    except ImportError as e:  # the package is there but not (yet) this API
        raise Skip(f"{PLAN_PACKAGE} lacks what compare_planner calls: {e}") from None
    shape = shape_of(config)
    method = method_for(m["strategy"], "weights", dict(m.get("options", {})), shape)
    shapes = Shapes(train_batch=m["batch"], train_seq=m["seq"])
    return int(footprint(shape, method, shapes, cuda=device.startswith("cuda")).train_peak)


def planner_section(bases: Bases, plan: Plan, sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    measured = []
    for name, r in sections.get("train_throughput", {}).get("runs", {}).items():
        measured.append({"strategy": name, "batch": r["batch"], "seq": r["seq"], "peak_bytes": r["peak_bytes"],
                         "options": r.get("options", {})})
    q = sections.get("qlora_paged_8bit", {})
    if q.get("status") == "pass":
        measured.append({"strategy": "qlora", "batch": q["batch"], "seq": q["seq"], "peak_bytes": q["peak_bytes"],
                         "options": q.get("options", {})})
    return compare_planner(bases.bf16.model.config, measured, plan.device, judge_ratio=plan.cuda)


def find_smollm2(given: Path | None, dry: bool) -> Path | None:
    """SmolLM2-135M's converted weights: --smollm2, else the harness cache's smollm2-* folder (not in
    --dry: the same checks as on the built model, on a larger one)."""
    if given is not None:
        return given
    if dry:
        return None
    from harness.core.cache import cache_root

    found = sorted(p for p in (cache_root() / "models").glob("smollm2-*") if (p / "config.json").is_file())
    return found[0] if found else None


def smollm2_section(plan: Plan) -> dict[str, Any]:
    """The precision check and scoring on SmolLM2-135M's real weights."""
    if plan.smollm2 is None:
        raise Skip("SmolLM2-135M weights not here (converted: 517 MB, more than the 64 MiB the device tool "
                   "carries; pass --smollm2 DIR where they are)")
    need("pydantic", "datasets", "peft")
    bases = load_bases(plan.smollm2, plan.device)
    checks = {name: precision_pair(name, bases, plan) for name in ("norm-bias", "full-ft", "lora")}
    scoring = scoring_section(bases.serving(plan.device), plan)
    ok = all(r["ok"] for r in checks.values()) and scoring["status"] == "pass"
    rows = [(f"SmolLM2 precision: {n}", "pass" if r["ok"] else "fail", _precision_figures(r))
            for n, r in checks.items()]
    rows.append(("SmolLM2 scoring", scoring["status"], scoring["summary"]))
    return {"status": "pass" if ok else "fail", "weights": str(plan.smollm2), "precision": checks, "scoring": scoring,
            "rows": rows}


# ---------------------------------------------------------------- the run


def run_section(name: str, fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run one section: its result, `skipped` with the reason, or `fail` with the error; never raises."""
    print(f"== {name}", flush=True)
    t0 = time.perf_counter()
    try:
        out = fn(*args)
    except Skip as e:
        out = {"status": "skipped", "reason": str(e)}
    except Exception as e:  # a section's failure is its result; the other sections still run
        out = {"status": "fail", "reason": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
               "traceback": traceback.format_exc(limit=12)}
        print(out["traceback"], file=sys.stderr)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    free_memory()
    detail = out.get("reason") or out.get("summary") or "; ".join(f"{r[0]}: {r[2]}" for r in out.get("rows", []))
    print(f"   {name}: {out['status']}{': ' + detail if detail else ''} ({out['wall_s']} s)", flush=True)
    return out


def machine(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"device": device, "python": platform.python_version(), "platform": platform.platform(),
                            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "torch": torch.__version__, "cuda": torch.version.cuda, "gpu": None}
    for name in ("transformers", "peft", "accelerate", "datasets", "pydantic", "bitsandbytes"):
        info[name] = package_version(name)
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(0)
        info |= {"gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                 "compute_capability": f"{props.major}.{props.minor}", "multiprocessors": props.multi_processor_count}
        with contextlib.suppress(Exception):
            info["tf32_matmul"] = bool(torch.backends.cuda.matmul.allow_tf32)
        with contextlib.suppress(Exception):
            info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                            capture_output=True, text=True, timeout=20).stdout.strip()
    else:
        info["cpu"] = platform.processor() or platform.machine()
    return info


def run_all(plan: Plan, only: set[str]) -> dict[str, Any]:
    folder = plan.work / "model"
    model = run_section("model", build_model, folder, plan)
    sections: dict[str, dict[str, Any]] = {}
    try:
        if model["status"] != "pass":
            raise RuntimeError("the model was not built")
        bases = load_bases(folder, plan.device)
    except Exception as e:
        traceback.print_exc()
        why = f"no model to check: {type(e).__name__}: {e}"
        return {"model": model, "sections": {s: {"status": "fail", "reason": why} for s in SECTIONS}}
    serving = bases.serving(plan.device)
    calls: dict[str, tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]] = {
        "precision": (precision_section, (bases, plan)), "broken_control": (control_section, (bases, plan)),
        "train_throughput": (train_throughput_section, (bases, plan)), "scoring": (scoring_section, (serving, plan)),
        "generation": (generation_section, (serving, plan)), "auto_batch": (auto_batch_section, (serving, plan)),
        "qlora_paged_8bit": (qlora_section, (bases, plan)), "planner": (planner_section, (bases, plan, sections)),
        "smollm2": (smollm2_section, (plan,)),
    }
    for name in SECTIONS:
        if name == "train_throughput" and plan.cuda:  # from here on the GPU holds what a compare's would:
            bases.fp32.model.to("cpu")  # the bf16 base and the copy that trains (the planner's picture)
            free_memory()
        if only and name not in only:
            sections[name] = {"status": "skipped", "reason": "not asked for (--only)"}
            continue
        fn, args = calls[name]
        sections[name] = run_section(name, fn, *args)
    return {"model": model, "sections": sections}


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    where = f"{m['gpu']}, CUDA {m['cuda']}" if m["gpu"] else f"CPU ({m['cpus']} cores)"
    lines = [f"GPU check ({report['mode']}): {where}; torch {m['torch']}, transformers {m['transformers']}, "
             f"peft {m['peft']}; {report['wall_s']} s in all. Overall: {report['status']}.", "",
             "| check | status | result |", "|---|---|---|", f"| model | {report['model']['status']} | "
             f"{report['model'].get('summary') or report['model'].get('reason', '')} |"]
    for name, s in report["sections"].items():
        for check, status, text in s.get("rows") or [(name, s["status"], s.get("summary") or s.get("reason", ""))]:
            lines.append(f"| {check} | {status} | {str(text).replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def check(args: argparse.Namespace) -> int:
    importable_harness()
    plan = make_plan(args)
    t0 = time.perf_counter()
    print(f"GPU check, {'dry (CPU, tiny model)' if plan.dry else 'full (' + plan.device + ')'}; work in {plan.work}",
          flush=True)
    info = machine(plan.device)
    print("   " + json.dumps(info), flush=True)
    only = set(args.only.split(",")) if args.only else set()
    unknown = only - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    try:
        body = run_all(plan, only)
    finally:
        shutil.rmtree(plan.work, ignore_errors=True)
    status = "fail" if any(s["status"] == "fail" for s in [body["model"], *body["sections"].values()]) else "pass"
    report = {"mode": "dry" if plan.dry else "gpu", "status": status, "machine": info, "plan": _plan_json(plan),
              **body, "wall_s": round(time.perf_counter() - t0, 1)}
    stem = "gpu_check_dry" if plan.dry else "gpu_check"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=1, default=str))
    table = markdown(report)
    (args.out / f"{stem}.md").write_text(table)
    print("\n" + table + f"\nwrote {args.out / stem}.json and .md", flush=True)
    return 0 if status == "pass" else 1


def _plan_json(plan: Plan) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in plan.__dict__.items() if k != "work"}


# ---------------------------------------------------------------- wheels for the device machine


def tree_bytes() -> int:
    """Bytes of what the device tool sends: tracked and untracked-not-ignored files."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return sum((ROOT / f).stat().st_size for f in listed if f and (ROOT / f).is_file())


def fetch_wheels(folder: Path) -> int:
    """Download (pip, --no-deps) the wheels gpu_check.sh installs on the device machine (CPython 3.12,
    x86-64 Linux) at this environment's versions; bitsandbytes only while everything fits."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.whl"):
        old.unlink()
    platforms = [f"manylinux_2_{n}_x86_64" for n in (28, 27, 24, 17)] + ["manylinux2014_x86_64", "manylinux1_x86_64"]
    base = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
            "3.12", "--implementation", "cp", *[a for p in platforms for a in ("--platform", p)], "-d", str(folder)]
    specs = [f"{n}=={package_version(n)}" for n in WHEELS if package_version(n) != "not installed"]
    subprocess.run(base + specs, check=True)
    for name in OPTIONAL_WHEELS:
        if package_version(name) == "not installed":
            continue
        subprocess.run([*base, f"{name}=={package_version(name)}"], check=True)
        total = tree_bytes() + sum(f.stat().st_size for f in folder.glob("*.whl"))
        if total > CARRY_LIMIT:
            for f in folder.glob(f"{name}-*.whl"):
                f.unlink()
            print(f"dropped {name}: tree and wheels would be {total / 2**20:.1f} MiB (the device carries 64 MiB)")
    total = tree_bytes() + sum(f.stat().st_size for f in folder.glob("*.whl"))
    inside = folder.is_relative_to(ROOT)
    print(f"{len(list(folder.glob('*.whl')))} wheels in {folder}; with the tree {total / 2**20:.1f} MiB. "
          + (f"Carry {folder.relative_to(ROOT)} and run benchmarks/gpu_check.sh there." if inside else
             "Outside the checkout: the device tool carries only paths inside it, and gpu_check.sh installs "
             f"from {WHEEL_DIR.relative_to(ROOT)}."))
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry", action="store_true", help="CPU, a 2-layer 64-wide Llama, a few steps: every code path")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--only", default="", help=f"comma-separated sections to run ({', '.join(SECTIONS)})")
    ap.add_argument("--peak-tflops", type=float, default=790.0, help="the GPU's dense bf16 peak (H200: 790 measured)")
    ap.add_argument("--mfu-target", type=float, default=0.40, help="full-ft MFU below this fails and is profiled")
    ap.add_argument("--smollm2", type=Path, default=None, help="SmolLM2-135M's converted folder")
    ap.add_argument("--train-batch", type=int, default=None)
    ap.add_argument("--train-seq", type=int, default=None)
    ap.add_argument("--score-batch", type=int, default=None)
    ap.add_argument("--hidden", dest="hidden_size", type=int, default=None)
    ap.add_argument("--layers", dest="num_hidden_layers", type=int, default=None)
    ap.add_argument("--intermediate", dest="intermediate_size", type=int, default=None)
    ap.add_argument("--heads", dest="num_attention_heads", type=int, default=None)
    ap.add_argument("--vocab", dest="vocab_size", type=int, default=None)
    ap.add_argument("--fetch-wheels", nargs="?", const=WHEEL_DIR, type=Path, default=None,
                    help=f"download the device machine's missing wheels into this folder (default {WHEEL_DIR})")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.fetch_wheels is not None:
        return fetch_wheels(args.fetch_wheels.resolve())
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
