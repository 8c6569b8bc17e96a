"""Planning before anything runs (harness.model.plan): models built from configs on the meta device (no
weights), memory broken down by term, the fit verdict, trainable counts that match peft's, and a
compare that skips a cell predicted not to fit before it trains."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.model.plan import (
    GB,
    Capacity,
    Shapes,
    Workload,
    activation_bytes,
    footprint,
    meta_model,
    method_for,
    predict_time,
    shape_of,
    verdict,
)


def llama3_8b():
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=4096, num_hidden_layers=32, intermediate_size=14336, num_attention_heads=32,
                       num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False)


def smollm2_135m():
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=576, num_hidden_layers=30, intermediate_size=1536, num_attention_heads=9,
                       num_key_value_heads=3, head_dim=64, vocab_size=49152, tie_word_embeddings=True)


GPU_24GB = Capacity("cuda", 24 * GB, "given")
TRAIN = Shapes(train_batch=8, train_seq=384, eval_batch=8, eval_seq=512)


def test_an_8b_full_fine_tune_does_not_fit_24_gb_and_says_by_how_much():
    shape = shape_of(llama3_8b())
    assert shape.params == 8_030_261_248  # Llama-3-8B's published count
    plan = footprint(shape, method_for("full-ft", "weights", {}, shape), TRAIN, cuda=True)
    fits, reason = verdict(plan.peak, GPU_24GB)
    assert not fits
    assert reason == f"predicted peak {plan.peak / GB:.1f} GB > 24.0 GB available"
    assert plan.peak > 100 * GB  # fp32 master weights, gradients and Adam moments alone: 16 bytes x 8B
    assert plan.terms["optimizer"] == 8 * shape.params and plan.terms["gradients"] == 4 * shape.params


def test_a_135m_lora_fits_24_gb():
    shape = shape_of(smollm2_135m())
    method = method_for("lora", "weights", {}, shape)
    assert method.trainable == 460_800  # peft's count for r=8 on q_proj and v_proj (README)
    plan = footprint(shape, method, TRAIN, cuda=True)
    fits, reason = verdict(plan.peak, GPU_24GB)
    assert fits and reason.startswith(f"predicted peak {plan.peak / GB:.1f} GB <= 24.0 GB")


@pytest.mark.parametrize(("strategy", "options", "planned"), [
    ("dpo", {}, "lora"), ("ewc", {"method": "full-ft"}, "full"), ("reft", {}, "lora"), ("my-plugin", {}, "full")])
def test_strategies_the_formulas_do_not_model_are_flagged_not_guessed(strategy, options, planned):
    """Their extra state (reference or reward model, Fisher) is not counted: the plan says so, and such a
    prediction never makes a compare skip the cell (harness.model.plan.cells)."""
    method = method_for(strategy, "weights", options, shape_of(smollm2_135m()))
    assert method.name == planned and method.approximate and method.note.startswith(f"{strategy}: planned as")
    assert not method_for("lora", "weights", {}, shape_of(smollm2_135m())).approximate


@pytest.mark.parametrize("strategy", ["zero-shot", "lora", "qlora", "dora", "full-ft", "layer-freeze", "ia3"])
@pytest.mark.parametrize("cuda", [False, True])
def test_the_breakdown_adds_up_to_the_peak(strategy, cuda):
    shape = shape_of(smollm2_135m())
    family = "context" if strategy == "zero-shot" else "weights"
    plan = footprint(shape, method_for(strategy, family, {}, shape), TRAIN, cuda=cuda)
    assert sum(plan.terms.values()) == pytest.approx(plan.peak, rel=1e-12)
    assert plan.peak == max(plan.train_peak, plan.eval_peak) and all(v >= 0 for v in plan.terms.values())
    expected = {"runtime", "weights", "kv cache", "eval work"} if strategy == "zero-shot" else {
        "runtime", "weights", "gradients", "optimizer", "activations", "logits"} | (set() if cuda else {"allocator"})
    expected |= {"embedding gradient"} if strategy == "full-ft" else set()  # SmolLM2 ties its embedding
    assert set(plan.terms) == expected
    assert "GB" not in plan.describe() and plan.describe().startswith(plan.phase)


def gemma3_270m_like():
    from transformers import LlamaConfig  # Gemma-3-270M's dimensions: a 262,144-token vocabulary

    return LlamaConfig(hidden_size=640, num_hidden_layers=18, intermediate_size=2048, num_attention_heads=4,
                       num_key_value_heads=1, head_dim=256, vocab_size=262144, tie_word_embeddings=True)


def test_the_cpu_allocator_keeps_freed_activations_but_not_the_logits():
    """Logit tensors are far above glibc's mmap threshold: freed, they go back to the system (footprint.py)."""
    small, large = shape_of(smollm2_135m()), shape_of(gemma3_270m_like())
    for shape in (small, large):
        plan = footprint(shape, method_for("lora", "weights", {}, shape), TRAIN)
        t = plan.terms
        assert t["allocator"] == pytest.approx(max(0.0, 0.4 * t["activations"] - t["gradients"] - t["optimizer"]))
        assert t["logits"] == 8 * 384 * shape.vocab * 12  # fp32 logits, saved log-softmax, their gradient
    assert footprint(large, method_for("lora", "weights", {}, large), TRAIN).terms["logits"] > 3 * GB


def test_a_prompt_forward_pays_the_head_only_where_logits_are_kept():
    shape = shape_of(gemma3_270m_like())
    method = method_for("zero-shot", "context", {}, shape)
    every = predict_time(shape, method, Workload(prompt_tokens=10_000), 1e11)
    kept = predict_time(shape, method, Workload(prompt_tokens=10_000, head_tokens=40), 1e11)
    assert every.eval_flops == 10_000 * 2 * shape.matmul_params
    assert every.eval_flops - kept.eval_flops == (10_000 - 40) * 2 * shape.head_params
    assert shape.head_params / shape.matmul_params > 0.6  # most of a small Gemma's forward is its head


def test_the_kept_positions_follow_how_each_kind_is_scored():
    from harness.model.plan.workload import SuiteTokens, TaskTokens, evaluation

    def task(generates: bool, scores_text: bool, choices: tuple[int, ...]) -> TaskTokens:
        return TaskTokens(trains=False, generates=generates, scores_text=scores_text, max_new=16, train_rows=(),
                          dev_rows=(), test_users=(100, 50), test_choices=choices, shot_tokens=0.0, max_answer=0,
                          test_chars=0)

    def head(t: TaskTokens) -> float:
        return evaluation(SuiteTokens((("k", t),), 0, 0), "zero-shot", {}, 8)["head_tokens"]

    assert head(task(True, False, (0, 0))) == 2  # generation: each prompt's last position
    assert head(task(False, False, (7, 9))) == 2 + 16  # choices: the last context token and every choice token
    assert head(task(False, True, (0, 0))) == 150  # a scored text: every position


def test_a_hybrid_trained_on_its_context_plans_the_longer_rows():
    """rag+lora trains on retrieved passages in front of each question (harness.strategy.compose): its
    planned training rows grow by the context a retrieving task's prompts get, under a longer limit."""
    from harness.model.plan.workload import WORDS_TO_TOKENS, SuiteTokens, TaskTokens, training
    from harness.strategy.registry import Registry

    qa = TaskTokens(trains=True, generates=True, scores_text=False, max_new=16, train_rows=(40, 60), dev_rows=(50,),
                    test_users=(30,), test_choices=(0,), shot_tokens=0.0, max_answer=4, test_chars=0)
    tokens = SuiteTokens((("short-answer", qa),), 0, 0)
    hybrid = {"context": {"k": 2, "chunk_size": 100}, "weights": {}}
    plain = training(tokens, {}, "cpu")
    grown = training(tokens, {}, "cpu", context=("rag+lora", hybrid))
    passages = 2 * 100 * WORDS_TO_TOKENS  # k chunks of chunk_size words
    assert plain["train_seq"] == 60 and grown["train_seq"] == 60 + int(passages)
    assert grown["dev_tokens"] == 50 + int(passages)
    long = SuiteTokens((("short-answer", replace(qa, train_rows=(900,))),), 0, 0)
    assert training(long, {}, "cpu")["train_seq"] == 384  # zero-shot rows: the default limit
    cls = Registry.discover().get("rag+lora")

    def planned(raw: dict) -> dict:  # the options as the planner gets them: validated and dumped
        return cls.Options.model_validate(raw).model_dump(mode="json")

    room = planned({"context": {"k": 2, "chunk_size": 100}})
    assert training(long, room["weights"], "cpu", context=("rag+lora", room))["train_seq"] == 1024  # passages fit
    given = planned({"context": {"k": 2, "chunk_size": 100}, "weights": {"max_seq_len": 512}})
    assert training(long, given["weights"], "cpu", context=("rag+lora", given))["train_seq"] == 512  # given


def test_a_strategy_whose_learning_rate_defaults_to_its_methods_is_planned():
    """ewc and dpo declare learning_rate None ("the method's default"): the plan must not fail on it."""
    from harness_strategies.ewc import Ewc

    from harness.model.plan.workload import loop_options

    options = Ewc.Options(cpu_max_steps=5).model_dump()
    assert options["learning_rate"] is None
    assert loop_options(options).cpu_max_steps == 5


def test_gradient_checkpointing_keeps_only_layer_inputs():
    shape = shape_of(llama3_8b())
    full = activation_bytes(shape, 1, 2048, 2, trains_linears=True)
    ckpt = activation_bytes(shape, 1, 2048, 2, trains_linears=True, checkpointing=True)
    assert ckpt < full / 5


def test_meta_instantiation_loads_no_weights():
    import psutil

    before = psutil.Process().memory_info().rss
    model = meta_model(llama3_8b())  # 8B parameters: 32 GB in fp32 if they were allocated
    grown = psutil.Process().memory_info().rss - before
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert grown < 0.5 * GB


def test_trainable_counts_match_peft_on_a_real_model(tiny_runtime):
    import copy

    from peft import IA3Config, LoraConfig, get_peft_model

    shape = shape_of(tiny_runtime.model.config)
    assert shape.params == sum(p.numel() for p in tiny_runtime.model.parameters())

    def trainable(config):
        model = get_peft_model(copy.deepcopy(tiny_runtime.model), config)
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    assert method_for("lora", "weights", {}, shape).trainable == trainable(lora)
    dora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", use_dora=True)
    assert method_for("dora", "weights", {}, shape).trainable == trainable(dora)
    ia3 = IA3Config(target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"],
                    task_type="CAUSAL_LM")
    assert method_for("ia3", "weights", {}, shape).trainable == trainable(ia3)
    hybrid = method_for("rag+lora", "hybrid", {"weights": {"r": 4}, "context": {"retriever": "dense"}}, shape)
    assert hybrid.trainable == trainable(LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    assert hybrid.embedder and not method_for("rag+lora", "hybrid", {"weights": {}, "context": {}}, shape).embedder
    assert "never skipped" in method_for("my-plugin", "weights", {}, shape).note


def test_the_activation_formula_is_near_what_autograd_saves(tiny_runtime):
    """The documented per-layer formula against the tensors autograd actually saves (saved-tensor hooks)
    for a fp32 training forward of a 2-layer Llama, full fine-tuning: within 35% (the formula rounds)."""
    import copy

    import torch

    model = copy.deepcopy(tiny_runtime.model).train()
    params = {p.data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params and t.dim() and t.shape[-1] != model.config.vocab_size:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    ids = torch.randint(0, model.config.vocab_size, (4, 32))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, labels=ids)
    shape = shape_of(model.config)
    predicted = activation_bytes(shape, 4, 32, 4, trains_linears=True)
    assert sum(saved.values()) == pytest.approx(predicted, rel=0.35)


def test_plan_a_compare_then_skip_what_cannot_fit(tmp_path, mini_suite_dir, tiny_model_dir, monkeypatch):
    import harness.api as api
    import harness.model.plan.cells as cells

    config = {"suite": str(mini_suite_dir), "model": str(tiny_model_dir), "strategies": ["zero-shot", "lora"],
              "out": str(tmp_path / "reports"), "options": {"lora": {"max_steps": 2, "batch_size": 2}}}
    rows = api.plan(config)
    assert [r.strategy for r in rows] == ["zero-shot", "lora"] and all(r.fits for r in rows)
    assert rows[1].steps == 2 and rows[1].trainable > 0 and rows[0].trainable == 0
    assert rows[1].time is not None and rows[1].time.adapt_s > 0
    small = api.plan(config, memory_gb=0.01)
    assert not any(r.fits for r in small) and "GB > 0.0 GB available" in small[1].reason
    [odd] = api.plan({**config, "strategies": ["reft"]}, memory_gb=0.01)  # not modelled: never skipped
    assert odd.fits and odd.reason.startswith("run anyway: predicted peak") and "never skipped" in odd.reason
    assert not (tmp_path / "reports").exists()  # planning writes nothing

    events: list[tuple[str, dict]] = []
    tiny = rows[0].memory.peak * 0.5  # room for neither cell
    monkeypatch.setattr(cells, "capacity", lambda device, memory_gb=None: Capacity("cpu", tiny, "RAM"))
    run = api.compare(config, on_event=lambda name, **data: events.append((name, data)))
    assert [e for e, _ in events][:2] == ["run_start", "plan"]
    assert [(r.strategy, r.status) for r in run.records] == [("zero-shot", "skipped"), ("lora", "skipped")]
    assert all(r.error.startswith("predicted peak") and "GB available" in r.error for r in run.records)
    assert "cell_start" not in [e for e, _ in events]  # nothing ran, nothing trained
    assert not list((tmp_path / "reports").rglob("cells/*.json"))  # and no skip is kept for a bigger device


def test_every_registered_strategy_can_be_planned(mini_suite_dir, tiny_model_dir):
    """One strategy the planner cannot read must not leave a whole compare unplanned (and unprotected
    from cells that cannot fit): every built-in gets a row with a peak and a time."""
    import harness.api as api

    rows = api.plan({"suite": str(mini_suite_dir), "model": str(tiny_model_dir), "strategies": ["all"]})
    assert {"lora", "ewc", "dpo", "grpo", "rlhf", "rlaif", "reft", "adapter", "cot", "rehearsal"} <= {
        r.strategy for r in rows}
    assert all(r.memory.peak > 0 and r.time is not None for r in rows)


def test_training_logits_are_planned_at_the_labelled_positions_of_each_batch():
    """Training computes logits only where the loss is taken (harness.model.loss): the union of a batch's
    answer positions. The plan counts that union per length-sorted batch, for memory and for FLOPs; soft
    prompts, whose virtual tokens shift every position, keep every one."""
    from harness.model.plan.workload import SuiteTokens, TaskTokens, batched, training
    from harness.model.throughput import train_flops

    # rows (length, labelled): a batch of (10, 3) and (12, 2) keeps positions 6-8 and 9-10
    assert batched([10, 12], [3, 2], 2, 384) == (12.0, 12, 5.0, 5)
    assert batched([10, 12], [], 2, 384) == (12.0, 12, 11.0, 11)  # no labels: every position but the last
    assert batched([500], [4], 1, 384) == (384.0, 384, 4.0, 4)  # cut from the left: the answer stays
    qa = TaskTokens(trains=True, generates=True, scores_text=False, max_new=16, train_rows=(40, 60, 61, 90),
                    dev_rows=(50,), test_users=(30,), test_choices=(0,), shot_tokens=0.0, max_answer=4, test_chars=0,
                    train_labels=(5, 5, 6, 7), dev_labels=(6,))
    tokens = SuiteTokens((("short-answer", qa),), 0, 0)
    kept = training(tokens, {"batch_size": 2}, "cpu")
    # batches (40, 60): positions 34-38 and 54-58; (61, 90): 54-59 and 82-88
    assert kept["train_logits"] == 13 and kept["train_logits_per_row"] == (10 * 2 + 13 * 2) / 4
    assert training(tokens, {"batch_size": 2}, "cpu", virtual=8)["train_logits"] is None
    shape = shape_of(smollm2_135m())
    method = method_for("full-ft", "weights", {}, shape)
    every = footprint(shape, method, Shapes(train_batch=2, train_seq=90)).train["logits"]
    few = footprint(shape, method, Shapes(train_batch=2, train_seq=90, train_logits=30)).train["logits"]
    assert few == every * 30 / 90
    n, h = shape.matmul_params, shape.head_params
    assert train_flops(n, h, 0, 100.0) == 100 * 4 * n  # every position: 4N per token
    assert train_flops(n, h, 0, 100.0, 10.0) == 100 * 4 * (n - h) + 10 * 4 * h
    assert train_flops(n, h, shape.params, 100.0, 10.0, head_trains=True) == (
        100 * (4 * (n - h) + 2 * (shape.params - h)) + 10 * 6 * h)


def test_plain_text_and_trl_trainings_are_planned_with_every_positions_logits():
    """Continued pretraining and rehearsal train on plain-text rows (every token labelled), TRL's trainers
    compute every position's logits: their plan keeps the logits term at the whole row."""
    shape = shape_of(smollm2_135m())
    assert method_for("rehearsal", "weights", {}, shape).all_logits
    assert method_for("dpo", "weights", {}, shape).all_logits
    assert not method_for("lora", "weights", {}, shape).all_logits
    assert not method_for("ewc", "weights", {}, shape).all_logits


def test_a_trained_tied_embedding_adds_its_two_gradients_at_the_end_of_the_backward():
    """Full fine-tuning of a tied embedding: the head's gradient of the shared table waits for the lookup's,
    then both are summed (benchmarks/memory_timeline.py: the peak once logits are computed at the labelled
    positions only); an untied model or a frozen embedding has no such term."""
    from transformers import LlamaConfig

    shape = shape_of(smollm2_135m())
    full = footprint(shape, method_for("full-ft", "weights", {}, shape), TRAIN).train
    assert full["embedding gradient"] == 2 * shape.vocab * shape.hidden * 4
    assert "embedding gradient" not in footprint(shape, method_for("lora", "weights", {}, shape), TRAIN).train
    untied = shape_of(LlamaConfig(**{**smollm2_135m().to_dict(), "tie_word_embeddings": False}))
    assert "embedding gradient" not in footprint(untied, method_for("full-ft", "weights", {}, untied), TRAIN).train
