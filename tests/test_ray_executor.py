"""The Ray executor: cells as tasks on a real local Ray cluster bound to 127.0.0.1. A worker is
SIGKILLed mid-cell (the `kill-once` plugin, loaded on the workers from its file); Ray retries the
task, no finished cell is recomputed or rewritten, and the records equal the local executor's
apart from timing fields. A second compare reuses every record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.run.config import CompareConfig
from harness.run.executors import LocalExecutor, RayExecutor, cell_resources, make_executor

PLUGINS = Path(__file__).parent / "fixtures" / "plugins" / "test_plugins.py"
STRATEGIES = "zero-shot,few-shot,lora,kill-once"


class _Strategy:
    name = "x"
    family = "weights"


def test_resources_default_by_family_and_declared_ones_override():
    assert cell_resources(_Strategy, "cpu") == {"num_cpus": 1.0}
    assert cell_resources(_Strategy, "cuda:0") == {"num_cpus": 1.0, "num_gpus": 1.0}
    context = type("C", (), {"name": "c", "family": "context"})
    assert cell_resources(context, "cuda") == {"num_cpus": 1.0, "num_gpus": 0.5}
    declared = type("D", (_Strategy,), {"resources": {"num_gpus": 2, "memory": 8e9}})
    assert cell_resources(declared, "cuda") == {"num_cpus": 1.0, "num_gpus": 2.0, "memory": 8e9}
    assert cell_resources(declared, "cpu") == {"num_cpus": 1.0, "memory": 8e9}  # no GPU wait on a CPU run
    assert cell_resources(_Strategy, "cuda", {"processes": 4}) == {"num_cpus": 1.0, "num_gpus": 4.0}  # DDP cell
    assert cell_resources(_Strategy, "cpu", {"processes": 2}) == {"num_cpus": 2.0}
    assert cell_resources(_Strategy, "cuda", {"processes": "auto"}) == {"num_cpus": 1.0, "num_gpus": 1.0}
    bad = type("B", (_Strategy,), {"resources": {"gpus": 1}})
    with pytest.raises(HarnessError, match="unknown resources"):
        cell_resources(bad, "cpu")


def test_a_cell_the_cluster_cannot_run_is_an_error_not_a_hang():
    from harness.run.executors import _check_feasible
    from harness.run.plan import Cell

    cell = Cell("lora", {}, 0, "abc")
    _check_feasible({"CPU": 2.0, "memory": 1e9}, [cell], {"abc": {"num_cpus": 1.0}})
    with pytest.raises(HarnessError, match="lora seed 0 needs num_gpus=1 but the Ray cluster has 0"):
        _check_feasible({"CPU": 2.0}, [cell], {"abc": {"num_cpus": 1.0, "num_gpus": 1.0}})


def test_executor_choice_and_a_clear_error_without_ray(monkeypatch, tmp_path):
    assert isinstance(make_executor(CompareConfig(suite="x")), LocalExecutor)
    ray = make_executor(CompareConfig(suite="x", executor="ray", ray_address="auto", plugins=[PLUGINS]))
    assert isinstance(ray, RayExecutor) and ray.address == "auto" and ray.plugins == (str(PLUGINS.resolve()),)
    with pytest.raises(HarnessError, match="needs --executor ray"):
        make_executor(CompareConfig(suite="x", ray_address="auto"))
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(HarnessError, match=r"pip install 'harness\[ray\]'"):
        make_executor(CompareConfig(suite="x", executor="ray"))


def test_cli_without_ray_exits_2_and_writes_nothing(mini_suite_dir, tiny_model_dir, tmp_path):
    blocker = tmp_path / "noray"
    blocker.mkdir()
    (blocker / "ray.py").write_text("raise ImportError('ray is not installed (test)')\n")
    proc = subprocess.run([sys.executable, "-m", "harness", "compare", "--suite", str(mini_suite_dir), "--model",
                           str(tiny_model_dir), "--out", str(tmp_path / "out"), "--strategies", "zero-shot",
                           "--executor", "ray"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(blocker)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error:" in proc.stderr and "pip install 'harness[ray]'" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def cluster():
    """A real Ray cluster on loopback, started by this process and shut down whatever happens."""
    ray = pytest.importorskip("ray")
    ctx = ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                   log_to_driver=False)
    try:
        yield ctx.address_info["gcs_address"]
    finally:
        ray.shutdown()


@pytest.fixture()
def run_toml(tmp_path, mini_suite_dir):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'suite = "{mini_suite_dir}"\nlimit = 3\nretention = false\n'
                   "[options.lora]\nmax_steps = 2\nbatch_size = 2\neval_every = 1\n")
    return cfg


def compare(cfg: Path, model: Path, out: Path, marker: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_KILL_AT"}
    env.update(HARNESS_TEST_MARKER=str(marker), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "harness", "compare", "--config", str(cfg), "--model", str(model),
                           "--out", str(out), "--strategies", STRATEGIES, "--plugin", str(PLUGINS), *extra],
                          capture_output=True, text=True, env=env, timeout=600)


def records(cells: Path) -> dict[str, dict]:
    """strategy -> record without timing fields, from a cells folder."""
    from test_determinism import without_timing

    recs = [json.loads(p.read_text()) for p in cells.glob("*.json")]
    return {r["strategy"]: without_timing(r) for r in recs}


def identities(cells: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for p in cells.glob("*.json"):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        out[p.name] = (st.st_ino, st.st_mtime_ns)
    return out


class Watcher:
    """Polls a cells folder while a compare runs: any record replaced after it first appeared is a
    recomputed (or rewritten) cell."""

    def __init__(self, cells: Path):
        self.cells, self.first, self.changed = cells, {}, set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self.stop.is_set():
            for name, ident in identities(self.cells).items():
                if self.first.setdefault(name, ident) != ident:
                    self.changed.add(name)
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def local_records(run_toml: Path, model: Path, cells: Path, monkeypatch) -> dict[str, dict]:
    """The same compare with the local executor, in this process (the marker exists: nothing is killed)."""
    from harness.data.catalog import load_suite
    from harness.model.spec import resolve_model
    from harness.run.config import load_config
    from harness.run.plan import make_plan
    from harness.run.runner import Runner
    from harness.strategy.registry import Registry

    marker = cells.parent / "already-killed"
    marker.parent.mkdir(parents=True)
    marker.write_text("no kill in the local run")
    monkeypatch.setenv("HARNESS_TEST_MARKER", str(marker))
    cfg = load_config(run_toml, {"strategies": STRATEGIES.split(","), "plugins": [PLUGINS]})
    reg = Registry.discover()
    reg.add_plugin_file(PLUGINS)
    plan = make_plan(cfg, load_suite(cfg.suite), resolve_model(str(model)), reg, "cpu")
    recs = LocalExecutor().run(Runner(plan, reg, cells, device="cpu"))
    assert [r.status for r in recs] == ["ok"] * len(recs), [r.error for r in recs]
    return records(cells)


@pytest.mark.slow
def test_ray_compare_with_a_killed_worker_equals_the_local_run(cluster, run_toml, tiny_model_dir, tmp_path,
                                                               monkeypatch):
    expected = local_records(run_toml, tiny_model_dir, tmp_path / "local" / "cells", monkeypatch)
    assert sorted(expected) == sorted(STRATEGIES.split(","))

    marker = tmp_path / "marker"
    cells = tmp_path / "ray" / "mini" / "cells"
    with Watcher(cells) as watch:
        first = compare(run_toml, tiny_model_dir, tmp_path / "ray", marker, "--executor", "ray",
                        "--ray-address", cluster)
    assert first.returncode == 0, first.stdout + first.stderr
    assert marker.read_text() == "killed"  # a worker died mid-cell; the driver lived on and Ray retried
    assert "executor ray" in first.stdout and sum(line.startswith("ok ") for line in first.stdout.splitlines()) == 4
    assert watch.changed == set(), "finished cells were recomputed"
    assert set(watch.first) == set(identities(cells))
    assert records(cells) == expected  # the same records as the local executor, timing aside
    assert not list(cells.glob(".*.tmp"))

    before = {p.name: p.read_bytes() for p in cells.glob("*.json")}
    idents = identities(cells)
    again = compare(run_toml, tiny_model_dir, tmp_path / "ray", marker, "--executor", "ray", "--ray-address", cluster)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("reused") == 4
    assert identities(cells) == idents and {p.name: p.read_bytes() for p in cells.glob("*.json")} == before
