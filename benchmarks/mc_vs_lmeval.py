"""Multiple-choice scoring: the harness's `ModelRuntime.loglikelihood_batch` vs lm-evaluation-harness
(HF backend) on the same model, items and prompt strings, side by side in one run.

Items are MMLU-format CSV rows (no header: question, A, B, C, D, answer letter) read at run time from
`<data>/val/<subject>_val.csv`; shots come from `<data>/dev/<subject>_dev.csv`. Two settings:

- continuation: `--shots` (5) solved dev rows with their answers written out as the full option text,
  then the question; each option's full text is the scored continuation (as lm-eval's ARC, HellaSwag
  and mmlu_continuation do). lm-eval runs one full forward per option; the harness runs the context once.
- letter: the question with lettered options (`--letter-shots` solved rows first, default none),
  then " A", " B", " C", " D" scored (lm-eval's default MMLU prompt; one forward per item for both).

Prompts are plain text (no chat template), built once here and given verbatim to both scorers: to
the harness as (context, continuations) strings, to lm-eval as a generated task YAML over a
generated JSON file whose `context` field is `doc_to_text` and `choices` field `doc_to_choice`
(target_delimiter "" since each continuation carries its leading space). lm-eval is a subprocess
in its own venv; per-item choices come from its `--log_samples` output. Its timing is the wall time
of its model's `loglikelihood` call (tokenization and forwards, as for the harness), written by a
small wrapper around lm-eval's own CLI entry point; model loading is excluded on both sides, and
each scorer first runs the first `--warmup` items untimed (thread pools, allocator growth).

Token ids: the harness encodes context and each continuation separately; lm-eval encodes
context + continuation and splits at the context's length. The script counts the requests where
the two differ (context ends in ":" and continuations start with a space, so byte-level BPE
pre-tokenization never merges across the boundary) and the largest per-choice log-prob gap.

    benchmarks/.venv-lmeval must exist first (lm-eval lives only there):
    python -m venv benchmarks/.venv-lmeval && benchmarks/.venv-lmeval/bin/pip install torch==2.13.0 'lm-eval[hf]'
    python benchmarks/mc_vs_lmeval.py [DATA] [--subjects a,b] [--limit 40] [--letter-limit 120] [--out DIR]

lm-eval runs at batch size 1 by default (`--lmeval-batch-size N` for another); on the long 5-shot
continuation items batch 1 is its faster setting here (at 8 it pads every row to the longest and takes a
full-vocabulary log-softmax at every position). The harness runs at its default batch size, 8.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.model.load import load_runtime, local_weights
from harness.model.runtime import ModelRuntime
from harness.model.spec import resolve_model

LETTERS = "ABCD"
DEFAULT_DATA = Path("/work/shared/data/mmlu")
DEFAULT_SUBJECTS = ("professional_law", "international_law", "jurisprudence")
DEFAULT_VENV = Path(__file__).parent / ".venv-lmeval"
SETTINGS = ("continuation", "letter")
TARGETS = {"continuation": 2.0, "letter": 1.0}  # harness items/s over lm-eval items/s, from issue 9
AGREEMENT_TARGET = 0.995


@dataclass(frozen=True)
class Item:
    subject: str
    question: str
    options: tuple[str, ...]
    answer: int


@dataclass(frozen=True)
class Request:
    """One item as both scorers see it: the exact context and continuation strings."""

    item_id: str
    context: str
    continuations: tuple[str, ...]
    label: int


@dataclass(frozen=True)
class Scoring:
    """One scorer's result on one setting."""

    chosen: list[int]
    logprobs: list[list[float]]
    seconds: float


# ------------------------------------------------------------------ data and prompts
def read_items(path: Path, subject: str) -> list[Item]:
    items = []
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            question, *options, letter = row
            items.append(Item(subject, question.strip(), tuple(o.strip() for o in options),
                              LETTERS.index(letter.strip())))
    return items


def select_items(data: Path, subjects: Sequence[str], limit: int) -> list[Item]:
    """`limit` val items in all, shared evenly over the subjects (what a small subject lacks goes
    to the others), each subject's first rows in file order."""
    pools = {s: read_items(data / "val" / f"{s}_val.csv", s) for s in subjects}
    quota = dict.fromkeys(subjects, 0)
    while sum(quota.values()) < limit and any(quota[s] < len(pools[s]) for s in subjects):
        for s in subjects:
            if quota[s] < len(pools[s]) and sum(quota.values()) < limit:
                quota[s] += 1
    return [item for s in subjects for item in pools[s][: quota[s]]]


def header(subject: str, lettered: bool) -> str:
    kind = "multiple choice questions" if lettered else "questions"
    return f"The following are {kind} (with answers) about {subject.replace('_', ' ')}.\n\n"


def continuation_block(item: Item, solved: bool) -> str:
    answer = f" {item.options[item.answer]}\n\n" if solved else ""
    return f"Question: {item.question}\nAnswer:{answer}"


def letter_block(item: Item, solved: bool) -> str:
    options = "".join(f"\n{letter}. {text}" for letter, text in zip(LETTERS, item.options, strict=False))
    answer = f" {LETTERS[item.answer]}\n\n" if solved else ""
    return f"{item.question}{options}\nAnswer:{answer}"


def build_requests(items: Sequence[Item], shots: dict[str, list[Item]], setting: str, n_shots: int) -> list[Request]:
    lettered = setting == "letter"
    block = letter_block if lettered else continuation_block
    requests = []
    for n, item in enumerate(items):
        solved = "".join(block(s, True) for s in shots[item.subject][:n_shots])
        context = header(item.subject, lettered) + solved + block(item, False)
        conts = tuple(f" {LETTERS[i]}" if lettered else f" {o}" for i, o in enumerate(item.options))
        requests.append(Request(f"{item.subject}-{n}", context, conts, item.answer))
    return requests


# ------------------------------------------------------------------ tokens
def harness_ids(rt: ModelRuntime, req: Request) -> tuple[list[int], list[list[int]]]:
    """The split the harness scores (ModelRuntime.encode_pair)."""
    pairs = [rt.encode_pair(req.context, c) for c in req.continuations]
    return pairs[0][0], [cont for _, cont in pairs]


def lmeval_ids(rt: ModelRuntime, req: Request) -> tuple[list[int], list[list[int]]]:
    """lm-eval's HFLM._encode_pair for a causal model (tokenizer defaults for special tokens; the
    context has no trailing whitespace to move): encode the whole, split at the context's length."""
    ctx = rt.tokenizer.encode(req.context)
    return ctx, [rt.tokenizer.encode(req.context + c)[len(ctx):] for c in req.continuations]


def _triangle(n: int) -> int:
    """Keys attended by a causal pass over n tokens (token i sees i keys)."""
    return n * (n + 1) // 2


def harness_work(ctx: list[int], conts: list[list[int]]) -> tuple[int, int, int]:
    """(tokens run, keys attended, positions with logits) of one request in `loglikelihood_batch`: the
    context once (logits at its last token); the continuations, packed behind it, only when one of them
    has more than one token (otherwise every choice is read off the context's last logits)."""
    n = len(ctx)
    if all(len(c) == 1 for c in conts):
        return n, _triangle(n), 1
    cont_tokens = sum(len(c) for c in conts)
    return n + cont_tokens, _triangle(n) + sum(n * len(c) + _triangle(len(c)) for c in conts), 1 + cont_tokens


def lmeval_work(ctx: list[int], conts: list[list[int]]) -> tuple[int, int, int]:
    """The same for lm-eval's HF backend: one causal forward over context + continuation minus its last
    token per choice, logits at every position; a single forward when every continuation is one token."""
    lengths = [len(ctx)] if all(len(c) == 1 for c in conts) else [len(ctx) + len(c) - 1 for c in conts]
    return sum(lengths), sum(_triangle(n) for n in lengths), sum(lengths)


def token_stats(rt: ModelRuntime, requests: Sequence[Request]) -> dict[str, Any]:
    encoded = [harness_ids(rt, r) for r in requests]
    mismatched = sum(harness_ids(rt, r) != lmeval_ids(rt, r) for r in requests)
    stats: dict[str, Any] = {
        "requests_with_different_token_ids": mismatched,
        "mean_context_tokens": round(sum(len(ctx) for ctx, _ in encoded) / len(encoded), 1),
        "max_context_tokens": max(len(ctx) for ctx, _ in encoded),
    }
    for name, work in (("harness", harness_work), ("lmeval", lmeval_work)):
        tokens, keys, logits = (sum(col) for col in zip(*(work(ctx, conts) for ctx, conts in encoded), strict=True))
        stats[f"{name}_forward_tokens"] = tokens
        stats[f"{name}_keys_per_token"] = round(keys / tokens, 1)  # mean keys a computed token attends to
        stats[f"{name}_logits_share"] = round(logits / tokens, 4)  # share of computed tokens given logits
    return stats


# ------------------------------------------------------------------ scorers
def argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda i: values[i])


def score_harness(rt: ModelRuntime, requests: Sequence[Request], batch_size: int, warmup: int) -> Scoring:
    pairs = [(r.context, r.continuations) for r in requests]
    if warmup:
        rt.loglikelihood_batch(pairs[:warmup], batch_size=batch_size)  # untimed, as for lm-eval
    t0 = time.perf_counter()
    scored = rt.loglikelihood_batch(pairs, batch_size=batch_size)
    seconds = time.perf_counter() - t0
    logprobs = [list(s.logprobs) for s in scored]
    return Scoring([argmax(lp) for lp in logprobs], logprobs, seconds)


TASK_YAML = """\
task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: context
doc_to_choice: choices
doc_to_target: label
target_delimiter: ""
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""

# lm-eval's own CLI entry point, with its model's `loglikelihood` timed (model loading excluded).
TIMED_CLI = textwrap.dedent("""\
    import json, os, time
    from lm_eval.__main__ import cli_evaluate
    from lm_eval.models.huggingface import HFLM

    _inner = HFLM.loglikelihood

    def _timed(self, requests, disable_tqdm=False):
        warmup = int(os.environ["MC_BENCH_WARMUP"])
        if warmup:
            _inner(self, requests[:warmup], disable_tqdm=True)  # untimed, as for the harness
        t0 = time.perf_counter()
        out = _inner(self, requests, disable_tqdm=disable_tqdm)
        with open(os.environ["MC_BENCH_TIMING"], "w") as f:
            json.dump({"seconds": time.perf_counter() - t0, "requests": len(requests)}, f)
        return out

    HFLM.loglikelihood = _timed
    cli_evaluate()
""")


def write_task(work: Path, task: str, requests: Sequence[Request]) -> None:
    data = work / f"{task}.jsonl"
    with data.open("w", encoding="utf-8") as f:
        for r in requests:
            f.write(json.dumps({"id": r.item_id, "context": r.context, "choices": list(r.continuations),
                                "label": r.label}) + "\n")
    (work / f"{task}.yaml").write_text(TASK_YAML.format(task=task, data=json.dumps(str(data))))


def lmeval_command(python: Path, work: Path, task: str, model_dir: str, batch_size: int) -> list[str]:
    return [str(python), str(work / "timed_cli.py"), "run", "--model", "hf",
            "--model_args", f"pretrained={model_dir},dtype=float32", "--tasks", task, "--include_path", str(work),
            "--device", "cpu", "--batch_size", str(batch_size), "--log_samples", "--output_path", str(work / "out")]


def read_samples(out: Path, task: str, n: int) -> tuple[list[int], list[list[float]]]:
    files = sorted(out.rglob(f"samples_{task}_*.jsonl"))
    if not files:
        raise RuntimeError(f"lm-eval wrote no samples for {task} under {out}")
    rows = [json.loads(line) for line in files[-1].read_text(encoding="utf-8").splitlines() if line.strip()]
    by_doc = {int(row["doc_id"]): [float(resp[0]) for resp in row["filtered_resps"]] for row in rows}
    if sorted(by_doc) != list(range(n)):
        raise RuntimeError(f"lm-eval scored {len(by_doc)} of {n} items of {task}")
    logprobs = [by_doc[i] for i in range(n)]
    return [argmax(lp) for lp in logprobs], logprobs


def score_lmeval(venv: Path, model_dir: str, setting: str, requests: Sequence[Request], batch_size: int,
                 warmup: int) -> Scoring:
    python = venv / "bin" / "python"
    if not python.is_file():
        raise SystemExit(f"no lm-eval venv at {venv}; create it with the one-liner in this script's docstring")
    work = Path(tempfile.mkdtemp(prefix="mc-lmeval-"))
    task = f"mc_bench_{setting}"
    write_task(work, task, requests)
    (work / "timed_cli.py").write_text(TIMED_CLI)
    timing = work / "timing.json"
    instances = sum(len(r.continuations) for r in requests[:warmup])  # lm-eval: one request per choice
    env = {**os.environ, "MC_BENCH_TIMING": str(timing), "MC_BENCH_WARMUP": str(instances),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HOME": str(work / "hf"), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(lmeval_command(python, work, task, model_dir, batch_size), env=env, cwd=work,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not timing.is_file():
        raise RuntimeError(f"lm-eval failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    chosen, logprobs = read_samples(work / "out", task, len(requests))
    return Scoring(chosen, logprobs, float(json.loads(timing.read_text())["seconds"]))


# ------------------------------------------------------------------ comparison
def accuracy(chosen: Sequence[int], requests: Sequence[Request]) -> float:
    return sum(c == r.label for c, r in zip(chosen, requests, strict=True)) / len(requests)


def compare(setting: str, requests: Sequence[Request], ours: Scoring, theirs: Scoring,
            tokens: dict[str, Any]) -> dict[str, Any]:
    n = len(requests)
    same = sum(a == b for a, b in zip(ours.chosen, theirs.chosen, strict=True)) / n
    gap = max(abs(a - b) for la, lb in zip(ours.logprobs, theirs.logprobs, strict=True)
              for a, b in zip(la, lb, strict=True))
    speedup = (n / ours.seconds) / (n / theirs.seconds)
    return {
        "setting": setting, "items": n, **tokens,
        "harness_s": round(ours.seconds, 2), "lmeval_s": round(theirs.seconds, 2),
        "harness_items_per_s": round(n / ours.seconds, 3), "lmeval_items_per_s": round(n / theirs.seconds, 3),
        "harness_forward_tokens_per_s": round(tokens["harness_forward_tokens"] / ours.seconds, 1),
        "lmeval_forward_tokens_per_s": round(tokens["lmeval_forward_tokens"] / theirs.seconds, 1),
        "speedup": round(speedup, 2), "speedup_target": TARGETS[setting],
        "harness_accuracy": round(accuracy(ours.chosen, requests), 4),
        "lmeval_accuracy": round(accuracy(theirs.chosen, requests), 4),
        "same_choice": round(same, 4), "same_choice_target": AGREEMENT_TARGET,
        "max_abs_logprob_diff": round(gap, 5),
        "met": speedup >= TARGETS[setting] and same >= AGREEMENT_TARGET,
    }


def markdown(result: dict[str, Any]) -> str:
    cfg = result["config"]
    lines = [f"Model {cfg['model']} (fp32, CPU, {cfg['torch_threads']} threads); val items of "
             f"{', '.join(cfg['subjects'])} (first rows, shared evenly); {cfg['shots']}-shot continuation, "
             f"{cfg['letter_shots']}-shot letter; batch size: harness {cfg['batch_size']}, lm-eval "
             f"{cfg['lmeval_batch_size']}; lm-eval {cfg['lmeval_version']}.",
             "", "| setting | items | mean ctx tokens | harness items/s | lm-eval items/s | speedup (target) "
             "| harness acc | lm-eval acc | same choice (target) | max abs logprob diff | token-id mismatches |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["settings"]:
        lines.append(f"| {r['setting']} | {r['items']} | {r['mean_context_tokens']} | {r['harness_items_per_s']} | "
                     f"{r['lmeval_items_per_s']} | {r['speedup']}x ({r['speedup_target']}x) | {r['harness_accuracy']} "
                     f"| {r['lmeval_accuracy']} | {r['same_choice']:.1%} ({AGREEMENT_TARGET:.1%}) | "
                     f"{r['max_abs_logprob_diff']} | {r['requests_with_different_token_ids']} |")
    lines += ["", "Times are each scorer's loglikelihood call alone (tokenization and forwards; model loading "
              "excluded). Tokens each scorer ran through the model, per second (padding not counted): "
              + "; ".join(f"{r['setting']}: harness {r['harness_forward_tokens_per_s']}, lm-eval "
                          f"{r['lmeval_forward_tokens_per_s']}" for r in result["settings"]) + "."]
    return "\n".join(lines) + "\n"


def lmeval_version(venv: Path) -> str:
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; "
                           "print(m.version('lm_eval'))"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA, help="folder with dev/ and val/")
    ap.add_argument("--subjects", default=",".join(DEFAULT_SUBJECTS))
    ap.add_argument("--limit", type=int, default=40, help="continuation-style val items in all, shared evenly "
                    "over the subjects (5-shot professional_law contexts are about 1,250 tokens)")
    ap.add_argument("--letter-limit", type=int, default=120, help="letter-style val items, chosen the same way")
    ap.add_argument("--shots", type=int, default=5, help="solved dev rows before each continuation-style item")
    ap.add_argument("--letter-shots", type=int, default=0, help="solved dev rows before each letter-style item")
    ap.add_argument("--batch-size", type=int, default=8, help="the harness's batch size (its default)")
    ap.add_argument("--lmeval-batch-size", type=int, default=1, help="lm-eval's batch size (1: its fastest on CPU)")
    ap.add_argument("--warmup", type=int, default=2, help="items each scorer runs untimed first (start-up costs)")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="the venv holding lm-eval")
    ap.add_argument("--model", default=None, help="model alias, folder or .gguf (default: the embedded default)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--name", default="mc_vs_lmeval", help="result file stem under --out")
    args = ap.parse_args()
    import torch

    subjects = [s.strip() for s in args.subjects.split(",") if s.strip()]
    spec = resolve_model(args.model)
    rt = load_runtime(spec, "cpu")
    shots = {s: read_items(args.data / "dev" / f"{s}_dev.csv", s) for s in subjects}
    rows = []
    for setting in args.settings.split(","):
        letter = setting == "letter"
        items = select_items(args.data, subjects, args.letter_limit if letter else args.limit)
        requests = build_requests(items, shots, setting, args.letter_shots if letter else args.shots)
        tokens = token_stats(rt, requests)
        ours = score_harness(rt, requests, args.batch_size, args.warmup)
        theirs = score_lmeval(args.venv, local_weights(spec), setting, requests, args.lmeval_batch_size, args.warmup)
        rows.append(compare(setting, requests, ours, theirs, tokens))
        print(json.dumps(rows[-1]), file=sys.stderr)
    config = {"model": spec.ref, "model_dir": local_weights(spec), "data": str(args.data), "subjects": subjects,
              "limit": args.limit, "letter_limit": args.letter_limit, "shots": args.shots,
              "letter_shots": args.letter_shots, "batch_size": args.batch_size,
              "lmeval_batch_size": args.lmeval_batch_size, "warmup_items": args.warmup,
              "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
              "lmeval_version": lmeval_version(args.venv),
              "load_average_1m_at_end": round(os.getloadavg()[0], 2)}  # about 2.0 when nothing else ran
    result = {"config": config, "settings": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    (args.out / f"{args.name}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
