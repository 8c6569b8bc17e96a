"""Weight strategies on the tiny model: training changes the trained weights and never the base,
artifacts reload to the same model, early stopping keeps the best checkpoint."""

import pytest
import torch

from harness.model.loss import PadCollator
from harness.model.spec import resolve_model
from harness.strategy.protocol import RunContext
from harness.strategy.registry import Registry
from harness.strategy.training import sft_pairs, tokenize_pairs

REGISTRY = Registry.discover()
WEIGHTS = [n for n in REGISTRY.names() if REGISTRY.get(n).family == "weights"]
SUPERVISED = [n for n in WEIGHTS if "num_generations" not in REGISTRY.get(n).Options.model_fields]
"""RL strategies (grpo, rlhf) learn only where a group's rewards differ, which a random tiny model's
completions rarely give: tests/test_preference.py trains them with a reward that varies."""


def ctx(tmp_path, rt, model_dir, name="cell"):
    return RunContext(0, "cpu", tmp_path / name, tmp_path / "cache", resolve_model(str(model_dir)), lambda: rt)


def test_all_four_weight_strategies_are_registered():
    assert {"lora", "qlora", "dora", "full-ft"} <= set(WEIGHTS)


@pytest.mark.parametrize("name", SUPERVISED)
def test_training_changes_trained_weights_and_never_the_base(name, tmp_path, mini_suite, tiny_runtime,
                                                             tiny_model_dir):
    cls = REGISTRY.get(name)
    before = {k: v.clone() for k, v in tiny_runtime.model.state_dict().items()}
    opts = cls.Options(max_steps=4, eval_every=2, batch_size=2, learning_rate=5e-3)
    adapted = cls(opts).adapt(ctx(tmp_path, tiny_runtime, tiny_model_dir), mini_suite)
    assert all(torch.equal(before[k], v) for k, v in tiny_runtime.model.state_dict().items())  # base untouched
    # soft prompts evaluate a fixed prefix computed from their trained peft model, kept as `trained_from`
    model = getattr(adapted.runtime.model, "trained_from", adapted.runtime.model)
    trained = {k: v for k, v in model.named_parameters() if v.requires_grad}
    assert trained and adapted.report.trainable_params == sum(v.numel() for v in trained.values())
    changed = [k for k, v in trained.items() if "lora_A" not in k and not _equal_to_base(k, v, before)]
    assert changed, "no trained weight moved"
    assert adapted.report.extras["train_steps"] == 4
    assert [r for r in adapted.report.curve if "dev_loss" in r] and adapted.report.train_tokens > 0
    assert adapted.report.artifact_bytes > 0


def _equal_to_base(key, value, base):
    """Compare a trained tensor with the base tensor of the same name; new tensors (adapters) start
    from their own init, so for them 'changed' means not all zeros (lora_B starts at zero)."""
    plain = key.replace("base_model.model.", "").replace(".base_layer", "")
    if plain in base and base[plain].shape == value.shape:
        return torch.equal(base[plain], value.detach())
    return bool(torch.all(value.detach() == 0)) if "lora_B" in key else False


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.mark.parametrize("name", ["lora", "dora", "ia3"])
def test_adapters_are_merged_for_evaluation_without_changing_outputs(name, tmp_path, mini_suite, tiny_runtime,
                                                                     tiny_model_dir):
    from harness.model.runtime import ModelRuntime

    cls = REGISTRY.get(name)
    opts = cls.Options(max_steps=3, eval_every=3, batch_size=2, learning_rate=2e-2)
    adapted = cls(opts).adapt(ctx(tmp_path, tiny_runtime, tiny_model_dir), mini_suite)
    model = adapted.runtime.model
    layers = [m for m in model.modules() if hasattr(m, "merged") and hasattr(m, "base_layer")]
    assert layers and all(m.merged for m in layers)  # evaluated merged
    prompts = ["Question: Who pays the invoices?\nAnswer:", "Question: Is notice 30 days?\nAnswer:"]
    ids = torch.tensor([tiny_runtime.encode("The Buyer shall pay all invoices within thirty days.")])
    merged_logits, merged_text = _logits(model, ids), [g.text for g in adapted.runtime.generate(prompts, 12)]
    model.unmerge_adapter()
    assert not any(m.merged for m in layers)
    unmerged = ModelRuntime(model, tiny_runtime.tokenizer, tiny_runtime.spec, "cpu")
    assert not torch.equal(_logits(model, ids), _logits(tiny_runtime.model, ids))  # the adapter does something
    assert torch.allclose(merged_logits, _logits(model, ids), atol=1e-4)
    assert merged_text == [g.text for g in unmerged.generate(prompts, 12)]


@pytest.mark.parametrize("name", ["lora", "full-ft"])
def test_artifact_reloads_to_the_same_model(name, tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    import copy

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    cls = REGISTRY.get(name)
    run = ctx(tmp_path, tiny_runtime, tiny_model_dir)
    adapted = cls(cls.Options(max_steps=3, eval_every=3, batch_size=2, learning_rate=5e-3)).adapt(run, mini_suite)
    artifact = run.work_dir / "artifact"
    if name == "lora":
        assert (artifact / "adapter_model.safetensors").is_file()
        reloaded = PeftModel.from_pretrained(copy.deepcopy(tiny_runtime.model), artifact).eval()
    else:
        assert (artifact / "model.safetensors").is_file()
        reloaded = AutoModelForCausalLM.from_pretrained(artifact).eval()
    ids = torch.tensor([tiny_runtime.encode("The Buyer shall pay all invoices.")])
    assert torch.allclose(_logits(adapted.runtime.model, ids), _logits(reloaded, ids), atol=1e-5)


def test_early_stopping_stops_and_keeps_the_best_checkpoint(tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    cls = REGISTRY.get("full-ft")
    # a learning rate far too high: dev loss gets worse after the first evaluations
    opts = cls.Options(max_steps=40, eval_every=1, patience=2, batch_size=2, learning_rate=0.3)
    adapted = cls(opts).adapt(ctx(tmp_path, tiny_runtime, tiny_model_dir), mini_suite)
    dev_losses = [r["dev_loss"] for r in adapted.report.curve if "dev_loss" in r]
    assert adapted.report.extras["stopped_early"] == 1.0 and adapted.report.extras["train_steps"] < 40
    assert adapted.report.extras["best_dev_loss"] == pytest.approx(min(dev_losses))
    # the model kept is the best one: its dev loss, computed here, equals the best logged
    rows = tokenize_pairs(adapted.runtime, sft_pairs(adapted.runtime, mini_suite, "dev", opts.system), 384)
    batch = PadCollator(tiny_runtime.tokenizer.pad_token_id)(rows)
    with torch.no_grad():
        loss = adapted.runtime.model(**batch).loss.item()
    assert loss == pytest.approx(min(dev_losses), rel=1e-4)


def test_knowledge_update_trains_on_held_out_documents(tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    cls = REGISTRY.get("lora")
    opts = cls.Options(max_steps=2, eval_every=2, batch_size=2, update_docs=1)
    upd = cls(opts).adapt(ctx(tmp_path, tiny_runtime, tiny_model_dir), mini_suite).report.update
    # pell-harbour-code sorts last: its train item is held out, then learnt; two test items ask about it
    assert upd is not None and upd.method == "continued-training" and upd.n_docs == 1
    assert upd.n_items == 2 and upd.wall_s > 0
    assert (tmp_path / "cell" / "update").is_dir()


def test_full_ft_can_record_hash_and_size_instead_of_keeping_weights(tmp_path, mini_suite, tiny_runtime,
                                                                     tiny_model_dir):
    cls = REGISTRY.get("full-ft")
    run = ctx(tmp_path, tiny_runtime, tiny_model_dir)
    report = cls(cls.Options(max_steps=1, batch_size=2, keep_weights=False)).adapt(run, mini_suite).report
    assert not list((run.work_dir / "artifact").glob("*.safetensors"))
    assert report.artifact_sha256 is not None and len(report.artifact_sha256) == 64
    assert report.artifact_bytes > 4 * 100_000  # the weights' size is still recorded (fp32, ~150k params)
