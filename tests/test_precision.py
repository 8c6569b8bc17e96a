"""Mixed precision as a GPU trains, emulated on this CPU: the base loaded in bf16 (as on CUDA), training
with `precision = "bf16-mixed"` (fp32 trainable weights, bf16 autocast). The trained weights must
move as in an fp32 run; with bf16 weights and no fp32 master copy they do not (a norm weight at 1.0
does not move at lr 1e-3: bf16 keeps 8 significant bits)."""

import pytest
import torch

from harness.model.load import load_runtime
from harness.model.spec import resolve_model
from harness.strategy.protocol import RunContext
from harness.strategy.registry import Registry

REGISTRY = Registry.discover()
STEPS = dict(max_steps=4, batch_size=2, eval_every=100, cpu_learning_rate=None)


def _train(name, rt, tmp_path, suite, model_dir, **options):
    cls = REGISTRY.get(name)
    run = RunContext(0, "cpu", tmp_path / f"{name}-{options['precision']}", tmp_path / "cache",
                     resolve_model(str(model_dir)), lambda: rt)
    adapted = cls(cls.Options(**STEPS, **options)).adapt(run, suite)
    model = adapted.runtime.model
    return {n: p.detach().float() for n, p in model.named_parameters() if p.requires_grad}, adapted.report


def _start(rt):
    """Each run's own starting weights (the bf16 base is the fp32 one rounded: not training's doing)."""
    return {n: p.detach().float() for n, p in rt.model.named_parameters()}


def _deltas(trained, base):
    return {n: v - base[n].float() for n, v in trained.items()}


@pytest.fixture(scope="module")
def bases(tiny_model_dir):
    spec = resolve_model(str(tiny_model_dir))
    return load_runtime(spec, "cpu", dtype="float32"), load_runtime(spec, "cpu", dtype="bfloat16")


def test_norm_weights_move_as_in_fp32(bases, tmp_path, mini_suite, tiny_model_dir):
    fp32_rt, bf16_rt = bases
    ref, _ = _train("norm-bias", fp32_rt, tmp_path, mini_suite, tiny_model_dir, precision="fp32", learning_rate=1e-3)
    got, report = _train("norm-bias", bf16_rt, tmp_path, mini_suite, tiny_model_dir, precision="bf16-mixed",
                         learning_rate=1e-3)
    assert report.budget is not None and report.budget.precision == "bf16-mixed"
    assert all(v.dtype == torch.float32 for v in got.values())  # the master weights stay fp32
    want, moved = _deltas(ref, _start(fp32_rt)), _deltas(got, _start(bf16_rt))
    for name in want:
        size, expected = moved[name].norm().item(), want[name].norm().item()
        assert expected > 1e-3 and size == pytest.approx(expected, rel=0.10), name


def test_full_finetuning_moves_in_the_fp32_direction(bases, tmp_path, mini_suite, tiny_model_dir):
    fp32_rt, bf16_rt = bases
    ref, _ = _train("full-ft", fp32_rt, tmp_path, mini_suite, tiny_model_dir, precision="fp32", learning_rate=1e-4)
    got, _ = _train("full-ft", bf16_rt, tmp_path, mini_suite, tiny_model_dir, precision="bf16-mixed",
                    learning_rate=1e-4)
    want = torch.cat([d.flatten() for d in _deltas(ref, _start(fp32_rt)).values()])
    moved = torch.cat([d.flatten() for d in _deltas(got, _start(bf16_rt)).values()])
    cosine = torch.nn.functional.cosine_similarity(want, moved, dim=0).item()
    assert cosine > 0.99 and moved.norm() > 0.5 * want.norm()
