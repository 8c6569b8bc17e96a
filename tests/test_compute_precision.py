"""The device's compute precision (harness.core.precision): bf16 where matmuls have it natively, fp32
elsewhere, overridable, part of every cell's id, and applied by the runtime to whatever model it
evaluates (a fine-tune's fp32 master weights are evaluated in bf16 like the base)."""

import pytest
import torch

from harness.core.errors import HarnessError
from harness.core.precision import autocast, compute_dtype
from harness.model.runtime import ModelRuntime
from harness.model.spec import resolve_model
from harness.model.training import LoopOptions, precision
from harness.run.plan import cell_id


def test_override_and_cuda(monkeypatch):
    monkeypatch.setenv("HARNESS_PRECISION", "fp32")
    assert compute_dtype("cpu") == compute_dtype("cuda:0") == "float32"
    monkeypatch.setenv("HARNESS_PRECISION", "bf16")
    assert compute_dtype("cpu") == "bfloat16"
    monkeypatch.setenv("HARNESS_PRECISION", "auto")
    assert compute_dtype("cuda") == "bfloat16"
    monkeypatch.setenv("HARNESS_PRECISION", "fp16")
    with pytest.raises(HarnessError, match="HARNESS_PRECISION"):
        compute_dtype("cpu")


def test_training_precision_follows_the_device(monkeypatch):
    monkeypatch.setenv("HARNESS_PRECISION", "bf16")
    assert precision(LoopOptions(), "cpu") == "bf16-mixed"
    monkeypatch.setenv("HARNESS_PRECISION", "fp32")
    assert precision(LoopOptions(), "cpu") == "fp32"
    assert precision(LoopOptions(precision="bf16-mixed"), "cpu") == "bf16-mixed"  # an explicit option wins


def test_precision_is_part_of_the_cell_id(monkeypatch, mini_suite, tiny_model_dir):
    model = resolve_model(str(tiny_model_dir))
    ids = set()
    for wanted in ("fp32", "bf16"):
        monkeypatch.setenv("HARNESS_PRECISION", wanted)
        ids.add(cell_id(mini_suite, model, "zero-shot", {}, 0, None))
    assert len(ids) == 2


def test_autocast_only_for_bf16():
    x = torch.randn(4, 8)
    w = torch.randn(8, 8)
    with autocast("cpu", "float32"):
        assert (x @ w).dtype == torch.float32
    with autocast("cpu", "bfloat16"):
        assert (x @ w).dtype == torch.bfloat16


def test_runtime_scores_fp32_weights_in_its_compute_precision(tiny_runtime):
    """A runtime computing in bf16 evaluates an fp32 model (a full fine-tune's master weights) under bf16
    autocast: its log-probs and NLLs are bf16's (close to fp32's, not equal), its greedy text the same."""
    bf16 = ModelRuntime(tiny_runtime.model, tiny_runtime.tokenizer, tiny_runtime.spec, "cpu", "bfloat16")
    requests = [("Either party may terminate", [" on notice", " Paris"]), ("Pay", [" all invoices"])]
    exact = [lp for s in tiny_runtime.loglikelihood_batch(requests) for lp in s.logprobs]
    mixed = [lp for s in bf16.loglikelihood_batch(requests) for lp in s.logprobs]
    assert mixed != exact
    assert mixed == pytest.approx(exact, rel=0.02, abs=0.05)
    texts = ["Either party may terminate this agreement.", "Pay all invoices within thirty days."]
    nll_exact = [s for s, _ in tiny_runtime.token_nll(texts)]
    nll_mixed = [s for s, _ in bf16.token_nll(texts)]
    assert nll_mixed != nll_exact
    assert nll_mixed == pytest.approx(nll_exact, rel=0.02)
    assert next(tiny_runtime.model.parameters()).dtype == torch.float32  # the weights are not touched


def test_a_bf16_cpu_plan_says_its_training_peaks_run_high(monkeypatch, tmp_path, mini_suite_dir, tiny_model_dir):
    """Until the activation model holds under CPU autocast, a bf16 CPU plan of a weight cell carries the
    measured caution; an fp32 plan and a context cell do not."""
    import harness.api as api
    from harness.model.plan.cells import BF16_CPU_CAUTION

    config = {"suite": str(mini_suite_dir), "model": str(tiny_model_dir), "strategies": ["zero-shot", "lora"],
              "out": str(tmp_path / "reports")}
    for wanted, expect in (("bf16", True), ("fp32", False)):
        monkeypatch.setenv("HARNESS_PRECISION", wanted)
        rows = {r.strategy: r for r in api.plan(config)}
        assert (BF16_CPU_CAUTION in rows["lora"].memory.notes) == expect
        assert BF16_CPU_CAUTION not in rows["zero-shot"].memory.notes


def test_bf16_mixed_training_leaves_the_model_its_own_forward(monkeypatch, tmp_path, mini_suite, tiny_model_dir):
    """The Trainer's accelerate wraps the trained model's forward in autocast and converts every output to
    fp32; evaluation applies the precision itself, so after training the model's forward is its own again
    (under bf16 weights its logits stay bf16 instead of being copied to fp32)."""
    from harness.model.load import load_runtime
    from harness.strategy.protocol import RunContext
    from harness.strategy.registry import Registry

    monkeypatch.setenv("HARNESS_PRECISION", "bf16")
    spec = resolve_model(str(tiny_model_dir))
    rt = load_runtime(spec, "cpu")
    assert rt.compute_dtype == "bfloat16"
    cls = Registry.discover().get("lora")
    run = RunContext(0, "cpu", tmp_path / "cell", tmp_path / "cache", spec, lambda: rt)
    adapted = cls(cls.Options(max_steps=2, batch_size=2, eval_every=100)).adapt(run, mini_suite)
    assert adapted.report.budget is not None and adapted.report.budget.precision == "bf16-mixed"
    model = adapted.runtime.model
    assert "_original_forward" not in model.__dict__ and "forward" not in model.__dict__
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([rt.encode("Pay all invoices.")])).logits
    assert logits.dtype == torch.bfloat16
