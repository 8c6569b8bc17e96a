"""RLAIF: preferences labelled by a judge model instead of gold, then DPO on them.

For a seeded subset of the train items (`judge_prompts`), the policy (after the SFT phase, by default)
samples two answers; the judge (the base model by default, `judge_model` for another) compares them
under written principles (`principles`, a text file; by default the constitution for legal answers
below), in both orders to cancel its position bias:
- `judge_mode = "loglik"` (default): the log-likelihood of "A" against "B" as the judge's reply;
- `judge_mode = "generate"`: the judge writes a short verdict, parsed by `parse_verdict`.
The preferred answer becomes `chosen`, the other `rejected` (ties and identical answers are dropped),
and DPO trains on those pairs (strategies/preference.py). The record carries the judge's agreement
with gold on the pairs where gold tells the two answers apart (the task's reward against the gold
answer, strategies/rl.py: token F1, or 1/0 for the gold choice).
"""

from __future__ import annotations

import gc
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from harness_strategies.preference import (
    DpoOptions,
    combine,
    dpo_phase,
    kl_items,
    kl_to_base,
    pair_rows,
    plan_steps,
    prompt_text,
    rated,
    sft_then,
)
from harness_strategies.rl import item_reward
from harness_strategies.weights import lora_or_full
from pydantic import Field

from harness.core.errors import HarnessError
from harness.core.records import Message
from harness.data.kinds.preference import PreferencePair
from harness.data.kinds.short_answer import extract_answer
from harness.data.overlap import normalize
from harness.data.pairs import preference_tasks
from harness.data.prompts import user_text
from harness.strategy import (
    Adapted,
    Example,
    ModelRuntime,
    Prompt,
    RunContext,
    Suite,
    Task,
    TrainCall,
    TrainResult,
    Unsupported,
    one_process,
    prompts_as_trained,
    train_weights,
)

DEFAULT_PRINCIPLES = """A good answer to a question about a statute or a contract is:
1. Correct: it gives what the text actually says, with the right numbers, names, periods and terms.
2. Grounded in the text: it relies on the statute or contract the question is about, not on guesses or other law.
3. Concise: the answer alone (a number, a name or a few words), without explanation or repetition."""

_KEYWORD = r"(?i:\b(?:answer|option|response|choice|verdict)\b)"
_EXPLICIT = re.compile(_KEYWORD + r"\s*(?:is\s*)?[:\-]?\s*[(\*\"']*\s*([AB])\b")
_WINNER = re.compile(r"\b([AB])\b\s*(?i:is|was)\s+(?i:better|best|correct|right|preferred|more\b)"
                     r"|(?i:prefer|choose|pick)\s+(?:" + _KEYWORD + r"\s*)?([AB])\b")
_PANNED = re.compile(r"\W*(?:\w+\W+){0,2}?(?i:wrong|worse|incorrect|inferior|weaker|not\b)")
"""Right after a named answer: it is called wrong ("Answer B is wrong"), so the name is not a verdict for it."""
_LEADING = re.compile(r"^[\s(\*\"'#]*([AB])(?:$|[\s)\*.:,!\"']*$|[)\*.:,!\"']|\s+(?i:is|wins|because)\b)")


def parse_verdict(text: str) -> str | None:
    """"A" or "B" from a judge's written verdict: a reply that says which is better ("A is better", "I
    prefer B"), that names one ("Answer B", "The better answer is answer A") unless it then calls it
    wrong ("Answer B is wrong"), or that is the letter ("B", "**A**", "(A)."); None when it names
    neither, or both without saying which is better."""
    winners = {g for m in _WINNER.finditer(text) for g in m.groups() if g}
    if len(winners) == 1:
        return winners.pop()
    explicit = [(m.group(1), m.end()) for m in _EXPLICIT.finditer(text)]
    if winners or explicit:
        letters = {letter for letter, _ in explicit}
        panned = any(_PANNED.match(text[end:]) for _, end in explicit)
        return letters.pop() if len(letters) == 1 and not winners and not panned else None
    lead = _LEADING.match(text.strip())
    return lead.group(1) if lead else None


class RlaifOptions(DpoOptions):
    judge_model: str | None = Field(None, description="The judge: a model folder, .gguf or hub id (loaded for this "
                                    "cell, its load time counted); None: the base model.")
    principles: str | None = Field(None, description="A text file with the principles the judge applies; None: the "
                                   "default constitution for legal answers (correct, grounded in the text, concise).")
    judge_mode: Literal["loglik", "generate"] = Field("loglik", description="loglik: the judge's log-likelihood of "
                                                      "'A' against 'B'; generate: a written verdict, parsed.")
    judge_prompts: int = Field(64, ge=0, description="Train items whose two sampled answers are judged (a seeded "
                               "draw; 0: all).")
    sample_tokens: int = Field(16, ge=1, le=2048, description="Tokens sampled per answer.")
    temperature: float = Field(1.0, gt=0, le=4, description="Sampling temperature of the two answers.")


def sample_answers(rt: ModelRuntime, texts: Sequence[str], n: int, max_new_tokens: int, temperature: float,
                   seed: int, batch: int = 8) -> list[list[str]]:
    """`n` sampled replies to each rendered prompt (left-padded batches; seeded), cut at the end of the
    turn (and at a blank line for a model without a chat template)."""
    import torch

    model, pad = rt.model, rt.tokenizer.pad_token_id
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    out: list[list[str]] = []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            enc = [rt.encode(t) for t in texts[i : i + batch]]
            width = max(len(e) for e in enc)
            ids = torch.tensor([[pad] * (width - len(e)) + e for e in enc], device=rt.device)
            mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in enc], device=rt.device)
            gen = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=temperature, top_k=0,
                                 top_p=1.0, max_new_tokens=max_new_tokens, num_return_sequences=n, pad_token_id=pad,
                                 eos_token_id=rt._stop_ids())  # the runtime's own end-of-turn tokens
            replies = [t.split("\n\n")[0] if not rt.chat else t
                       for t in rt.tokenizer.batch_decode(gen[:, width:], skip_special_tokens=True)]
            out += [replies[j * n : (j + 1) * n] for j in range(len(enc))]
    model.train(was_training)
    return out


def judge_prompt(principles: str, question: str, first: str, second: str) -> Prompt:
    """The judge's prompt: the principles, the question, answers A and B, and what to reply."""
    system = f"You compare two answers to a question under these principles.\n\n{principles}"
    user = (f"Question:\n{question}\n\nAnswer A: {first}\nAnswer B: {second}\n\n"
            "Which answer is better under the principles? Reply with A or B only.")
    return Prompt((Message("system", system), Message("user", user)))


def judge(judge_rt: ModelRuntime, mode: str, principles: str, cases: Sequence[tuple[str, str, str]]) -> list[float]:
    """For each (question, answer 1, answer 2): > 0 when the judge prefers answer 1, < 0 answer 2, 0 a tie;
    both orders are asked (answer 1 as A, then as B), which cancels a preference for a position."""
    prompts = [judge_rt.render(judge_prompt(principles, q, a, b)) for q, a, b in cases]
    swapped = [judge_rt.render(judge_prompt(principles, q, b, a)) for q, a, b in cases]
    if mode == "generate":
        first = [parse_verdict(g.text) for g in judge_rt.generate(prompts, 8)]
        second = [parse_verdict(g.text) for g in judge_rt.generate(swapped, 8)]
        return [float((x == "A") + (y == "B") - (x == "B") - (y == "A")) for x, y in zip(first, second, strict=True)]
    prefix = judge_rt.answer_prefix()
    scored = judge_rt.loglikelihood_batch([(p + prefix, ["A", "B"]) for p in (*prompts, *swapped)])
    margins = [s.logprobs[0] - s.logprobs[1] for s in scored]
    return [margins[i] - margins[len(cases) + i] for i in range(len(cases))]


def judged_pairs(items: Sequence[tuple[Task, Example]], samples: Sequence[Sequence[str]], verdicts: Sequence[float]
                 ) -> tuple[list[tuple[Task, PreferencePair]], dict[str, float]]:
    """The judge's pairs (preferred answer chosen) and its agreement with gold where gold is known."""
    pairs, agree, known = [], 0, 0
    for (task, ex), (one, two), verdict in zip(items, samples, verdicts, strict=True):
        a, b = extract_answer(one), extract_answer(two)
        if not a or not b or normalize(a) == normalize(b) or verdict == 0:
            continue
        chosen, rejected = (a, b) if verdict > 0 else (b, a)
        pairs.append((task, PreferencePair(f"{ex.id}-judged", task.name, ex.id, chosen, rejected, "judge")))
        gold = [item_reward(x, [ex.target, *ex.aliases], ex.choices, "f1") for x in (one, two)]
        if gold[0] != gold[1]:
            known += 1
            agree += (gold[0] > gold[1]) == (verdict > 0)
    stats = {"judge_pairs": float(len(pairs)), "judge_known": float(known),
             "judge_agreement": agree / known if known else float("nan")}
    return pairs, stats


class Rlaif:
    """Preferences from a judge model under written principles, then DPO (after SFT by default)."""

    name: ClassVar[str] = "rlaif"
    family: ClassVar[str] = "weights"
    description: ClassVar[str] = ("RLAIF: a judge (the base by default) prefers one of two sampled answers under "
                                  "written principles; DPO on those pairs, after SFT by default.")
    Options: ClassVar[type[RlaifOptions]] = RlaifOptions

    def __init__(self, options: RlaifOptions):
        self.options = options
        self.judge_rt: ModelRuntime | None = None

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        return lora_or_full(base, self.options)

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        one_process(self, run, "TRL's trainers run in this process")
        if not any(t.train for t in preference_tasks(suite)):
            raise Unsupported(f"suite {suite.name!r} has no train items to sample answers for")
        self.principles = self._principles()
        self.judge_rt = self._judge(run)
        adapted = train_weights(self, run, suite, train=self._train)  # the knowledge update runs inside
        self.judge_rt = None  # serving needs the policy only: evaluation's memory is not the judge's
        gc.collect()
        return adapted

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return prompts_as_trained(self.options, task, examples)

    def _judge_runtime(self) -> ModelRuntime:
        assert self.judge_rt is not None, "rlaif: the judge is loaded in adapt() and released after training"
        return self.judge_rt

    def _principles(self) -> str:
        if self.options.principles is None:
            return DEFAULT_PRINCIPLES
        path = Path(self.options.principles).expanduser()
        if not path.is_file() or not path.read_text(encoding="utf-8").strip():
            raise HarnessError(f"principles file not found or empty: {path} (rlaif option `principles`)")
        return path.read_text(encoding="utf-8").strip()

    def _judge(self, run: RunContext) -> ModelRuntime:
        if self.options.judge_model is None:
            return run.load_base()
        from harness.model.load import load_runtime
        from harness.model.spec import resolve_model

        return load_runtime(resolve_model(self.options.judge_model), device=run.device)

    def _items(self, call: TrainCall) -> list[tuple[Task, Example]]:
        items = [(t, ex) for t in preference_tasks(call.suite) for ex in t.train]
        n = self.options.judge_prompts
        if n and len(items) > n:
            keep = sorted(int(i) for i in call.run.rng("rlaif-items", call.phase).permutation(len(items))[:n])
            items = [items[i] for i in keep]
        return items

    def _train(self, call: TrainCall) -> TrainResult:
        o = rated(self.options)
        items = self._items(call)
        sft_rows = sum(len(t.train) for t in preference_tasks(call.suite)) if o.sft_first else 0
        plan = plan_steps(o, call.run.device, sft_rows, len(items), o.sft_share)
        first = sft_then(call, o, plan)
        rt = call.runtime
        samples = sample_answers(rt, [prompt_text(rt, t, ex, o.system) for t, ex in items], 2, o.sample_tokens,
                                 o.temperature, call.run.seed)
        cases = [(user_text(t, ex), extract_answer(s[0]), extract_answer(s[1])) for (t, ex), s in zip(items, samples,
                                                                                                     strict=True)]
        pairs, stats = judged_pairs(items, samples, judge(self._judge_runtime(), o.judge_mode, self.principles, cases))
        second: tuple[TrainResult | None, float] = (None, 0.0)
        if pairs:
            second = dpo_phase(call, o, pair_rows(rt, pairs, o.system, o.max_seq_len), plan.second, o.beta)
        extras = {**stats, "pref_pairs": float(len(pairs)), "pref_beta": o.beta, "judge_items": float(len(items))}
        if call.phase == "train" and o.kl_items:
            extras["kl_to_base"] = kl_to_base(call, kl_items(call.suite, o.kl_items), o.system)
        who = self.options.judge_model or "the base model"
        notes = (f"rlaif: {'SFT, then ' if plan.first else ''}two sampled answers to {len(items)} train items judged "
                 f"by {who} ({o.judge_mode}, both orders) under {'the default' if o.principles is None else 'given'} "
                 f"principles; DPO on {len(pairs)} judged pairs")
        return combine(o, call, plan, [first, second], extras, notes)
