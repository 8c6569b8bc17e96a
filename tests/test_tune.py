"""Hyperparameter search: study storage, pruning wiring, seeded sampler, dev-only scoring, and the
equal-trials rule of `compare --tune-trials`. Tiny model from a config, the ten-item mini suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna")

PROBE = '''
from harness.data.prompts import zero_shot_prompt
from harness.strategy.protocol import StrategyOptions, unchanged_weights
from pydantic import Field


class Probe:
    """Zero-shot that writes down every item it is shown, with a declared search space."""

    name = "probe"
    family = "context"
    description = "records the items it sees"
    seen_log = "{log}"

    class Options(StrategyOptions):
        level: int = Field(2, ge=1, le=4)

    @staticmethod
    def search_space(trial):
        return {{"level": trial.suggest_int("level", 1, 4)}}

    def __init__(self, options):
        self.options = options

    def adapt(self, run, suite):
        with open(self.seen_log, "a") as f:
            for t in suite.tasks:
                f.writelines(f"adapt-test {{e.id}}\\n" for e in t.test)
        return unchanged_weights(run)

    def prompts(self, run, task, examples):
        with open(self.seen_log, "a") as f:
            f.writelines(f"prompt {{e.id}}\\n" for e in examples)
        return [zero_shot_prompt(task, e, "") for e in examples]
'''


def _cfg(suite: Path, model: Path, out: Path, plugins: tuple[Path, ...] = (), **options):
    from harness.run.config import load_config

    return load_config(None, {"suite": str(suite), "model": str(model), "out": out,
                              "plugins": list(plugins) or None, "options": options or None})


def _study(cfg, strategy: str, trials: int, seed: int = 0):
    from harness.data.catalog import load_suite
    from harness.model.spec import resolve_model
    from harness.run.tune import plan_study
    from harness.strategy.registry import Registry

    registry = Registry.discover()
    for p in cfg.plugins:
        registry.add_plugin_file(p)
    return plan_study(cfg, load_suite(cfg.suite), resolve_model(cfg.model), registry, strategy, trials, seed,
                      "dev-accuracy", "cpu")


def test_study_is_stored_scored_on_dev_only_and_starts_from_the_defaults(tmp_path, mini_suite_dir, mini_suite,
                                                                        tiny_model_dir):
    from harness.core.records import CellRecord, from_json
    from harness.run.tune import Tuning, load_result, open_study, tune

    log = tmp_path / "seen.txt"
    plugin = tmp_path / "probe_plugin.py"
    plugin.write_text(PROBE.format(log=log))
    cfg = _cfg(mini_suite_dir, tiny_model_dir, tmp_path / "out", (plugin,))
    spec, folder = _study(cfg, "probe", 3)
    result = tune(spec, Tuning(folder, 3))

    assert (folder / "study.journal").is_file() and load_result(folder) == result
    stored = open_study(spec).trials
    assert [t.state.name for t in stored] == ["COMPLETE"] * 3
    assert result.status == "tuned" and result.finished == 3
    assert result.trials[0].defaults and result.trials[0].params == {"level": 2}  # trial 0: the defaults
    assert result.default_value == result.trials[0].value
    assert result.best_value == max(t.value for t in result.trials)
    # dev-only: the strategy saw dev items and never a test item, in adapt or in prompts
    dev = {e.id for t in mini_suite.tasks for e in t.dev}
    test = {e.id for t in mini_suite.tasks for e in t.test}
    seen = {line.split()[1] for line in log.read_text().splitlines()}
    assert seen and seen <= dev and not seen & test
    for row in result.trials:
        rec = from_json(CellRecord, (Path(spec.cells_dir) / f"{row.cell_id}.json").read_bytes())
        assert {p.example_id for p in rec.predictions} <= dev
    # the same inputs again: reused, nothing re-run
    log.unlink()
    assert tune(spec, Tuning(folder, 3)) == result and not log.exists()
    # a trial whose process was killed: on resume it runs again with the same parameters, counted once
    from harness.run.tune import search_space
    from harness.strategy.registry import Registry

    study = open_study(spec)
    killed = study.ask()
    registry = Registry.discover()
    registry.add_plugin_file(plugin)
    search_space(registry, "probe")(killed)
    resumed = tune(spec, Tuning(folder, 4))
    states = [t.state for t in resumed.trials]
    assert resumed.finished == 4 and states.count("interrupted") == 1 and len(states) == 5
    assert resumed.trials[-1].params == resumed.trials[states.index("interrupted")].params


def test_seeded_sampler_repeats_its_choices(tmp_path):
    """Same seed, same parameters trial after trial (TPE past its random start-up); another seed differs."""
    from harness_strategies.weights import lora_space

    from harness.run.tune import TrialSpec, open_study

    def run(seed: int, name: str) -> list[dict]:
        spec = TrialSpec(suite="mini", model=None, strategy="lora", base_options={}, seed=seed,
                         metric="dev-accuracy", limit=None, batch_size=8, device="cpu",
                         storage=str(tmp_path / f"{name}.journal"), study_name=name, cells_dir=str(tmp_path),
                         startup_trials=3, prune_after=1)
        study = open_study(spec)
        for _ in range(7):
            trial = study.ask()
            opts = lora_space(trial)
            study.tell(trial, -abs(opts["learning_rate"] - 1e-3) * 1000 + opts["r"] / 32)
        return [t.params for t in study.trials]

    first, again, other = run(0, "a"), run(0, "b"), run(1, "c")
    assert first == again
    assert first != other


def test_a_trial_with_a_worse_dev_loss_than_the_median_is_pruned(tmp_path, mini_suite_dir, tiny_model_dir):
    """The dev-loss hook in training reaches the pruner: against an earlier trial whose dev loss was 0
    at every step, the real trial is pruned at its first evaluation and leaves no record or folder."""
    from dataclasses import replace

    from harness_strategies.weights import lora_space

    from harness.run.tune import open_study, run_trials

    cfg = _cfg(mini_suite_dir, tiny_model_dir, tmp_path / "out", lora={"eval_every": 1})
    spec, _ = _study(cfg, "lora", 2)
    spec = replace(spec, prune_after=1)
    study = open_study(spec)
    perfect = study.ask()
    lora_space(perfect)
    for step in range(1, 40):
        perfect.report(0.0, step)  # -dev loss under a maximized metric: dev loss 0
    study.tell(perfect, 1.0)

    run_trials(spec, 1)
    trial = open_study(spec).trials[-1]
    assert trial.state.name == "PRUNED"
    assert list(trial.intermediate_values) == [1] and trial.intermediate_values[1] < 0
    assert "pruned at step 1" in trial.user_attrs["pruned"]
    cells = Path(spec.cells_dir)
    assert not (cells / f"{trial.user_attrs['cell_id']}.json").exists()
    assert not (cells / trial.user_attrs["cell_id"]).exists()


def test_compare_tunes_every_strategy_with_the_same_trials(tmp_path, mini_suite_dir, tiny_model_dir):
    out = tmp_path / "out"
    args = [sys.executable, "-m", "harness", "compare", "--suite", str(mini_suite_dir), "--model",
            str(tiny_model_dir), "--strategies", "zero-shot,few-shot,rag", "--tune-trials", "2", "--no-retention",
            "--out", str(out)]
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "zero-shot: not tuned: no search space" in proc.stdout
    studies = {json.loads(p.read_text())["strategy"]: json.loads(p.read_text())
               for p in (out / "mini" / "tuning").glob("*/tune.json")}
    assert set(studies) == {"few-shot", "rag"}
    assert {s["trials_requested"] for s in studies.values()} == {2}
    assert all(len(s["trials"]) == 2 and s["trials"][0]["defaults"] for s in studies.values())
    run_dir = next(p.parent for p in (out / "mini").glob("*/report.json"))
    report = json.loads((run_dir / "report.json").read_text())
    assert [t["strategy"] for t in report["tuning"]] == ["zero-shot", "few-shot", "rag"]
    md = (run_dir / "report.md").read_text()
    assert "## How each strategy was tuned" in md and "not tuned: no search space" in md
    assert "How each strategy was tuned" in (run_dir / "report.html").read_text()
    assert not list(out.rglob("mlflow*"))  # tracking is off unless asked
    for name, study in studies.items():  # the compare's cells ran with each study's best options
        rec = json.loads((run_dir / "records" / f"{name}-seed0.json").read_text())
        assert rec["options"] == study["best_options"]
    # a re-run reuses the studies: no trial added
    proc = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    again = {json.loads(p.read_text())["strategy"]: len(json.loads(p.read_text())["trials"])
             for p in (out / "mini" / "tuning").glob("*/tune.json")}
    assert again == {"few-shot": 2, "rag": 2}


def test_tune_refuses_a_suite_without_dev_items(tmp_path, mini_suite, tiny_model_dir):
    from dataclasses import replace

    from harness.core.errors import HarnessError
    from harness.run.tune import dev_view

    no_dev = replace(mini_suite, tasks=tuple(replace(t, dev=()) for t in mini_suite.tasks))
    with pytest.raises(HarnessError, match="no dev items"):
        dev_view(no_dev)


def test_tune_refuses_a_url_out_folder(monkeypatch, capsys, mini_suite_dir):
    """The study's journal needs a local file lock: a URL --out is an input error, not a folder named 's3:'."""
    import sys

    from harness.cli import main

    monkeypatch.setattr(sys, "argv", ["harness", "tune", "--suite", str(mini_suite_dir), "--strategy", "few-shot",
                                      "--trials", "1", "--out", "s3://bucket/runs"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2 and "a study is written locally" in capsys.readouterr().err


@pytest.mark.slow
def test_trials_run_as_ray_tasks_sharing_the_study(tmp_path, mini_suite_dir, tiny_model_dir):
    """Under the Ray executor the trials are Ray tasks (other processes) appending to one journal."""
    pytest.importorskip("ray")
    from harness.run.executors import RayExecutor
    from harness.run.tune import Tuning, tune

    plugin = tmp_path / "probe_plugin.py"
    plugin.write_text(PROBE.format(log=tmp_path / "seen.txt"))
    cfg = _cfg(mini_suite_dir, tiny_model_dir, tmp_path / "out", (plugin,))
    spec, folder = _study(cfg, "probe", 3)
    result = tune(spec, Tuning(folder, 3, jobs=2, executor=RayExecutor(None, (plugin,))))
    assert result.status == "tuned" and result.finished == 3
    assert [t.state for t in result.trials] == ["complete"] * 3 and result.trials[0].defaults
    from harness.run.tune import open_study

    hosts = {t.user_attrs["host"] for t in open_study(spec).trials}
    assert hosts and all(not h.endswith(f":{os.getpid()}") for h in hosts)  # none ran in this process
    import ray

    assert not ray.is_initialized()  # the private cluster was shut down
