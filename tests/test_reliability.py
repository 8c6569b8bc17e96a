"""Resource faults and concurrency: out-of-memory retries, a full disk, a second run on the same
folder, and --debug."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core.cache import atomic_write_text, exclusive
from harness.core.errors import HarnessError
from harness.model.spec import resolve_model
from harness.run.config import CompareConfig
from harness.run.plan import make_plan
from harness.run.runner import Runner
from harness.strategy.registry import Registry

PLUGINS = Path(__file__).parent / "fixtures" / "plugins" / "test_plugins.py"


def run(mini_suite, tiny_model_dir, tmp_path, strategies, batch_size=8):
    reg = Registry.discover()
    reg.add_plugin_file(PLUGINS)
    plan = make_plan(CompareConfig(suite="mini", strategies=strategies, batch_size=batch_size), mini_suite,
                     resolve_model(str(tiny_model_dir)), reg)
    events: list[tuple[str, dict]] = []
    runner = Runner(plan, reg, tmp_path / "cells", on_event=lambda e, **d: events.append((e, d)), device="cpu")
    return runner.run(), events


def test_out_of_memory_halves_the_batch_and_retries(mini_suite, tiny_model_dir, tmp_path):
    [rec], events = run(mini_suite, tiny_model_dir, tmp_path, ["oom-above-2"])
    assert rec.status == "ok" and rec.latency is not None and rec.latency.batch_size == 2
    assert [d["reason"] for e, d in events if e == "cell_retry"] == ["out of memory; batch size 4",
                                                                      "out of memory; batch size 2"]


def test_out_of_memory_under_an_automatic_batch_restarts_from_eight(mini_suite, tiny_model_dir, tmp_path):
    [rec], events = run(mini_suite, tiny_model_dir, tmp_path, ["oom-above-2"], batch_size="auto")
    assert rec.status == "ok" and rec.latency is not None and rec.latency.batch_size == 2
    assert [d["reason"] for e, d in events if e == "cell_retry"] == [
        "out of memory; batch size 8", "out of memory; batch size 4", "out of memory; batch size 2"]


def test_batch_size_is_a_number_or_auto():
    assert CompareConfig(suite="s", batch_size="auto").batch_size == "auto"
    for bad in ("fast", 0, 2000):
        with pytest.raises(ValueError):
            CompareConfig(suite="s", batch_size=bad)


def test_out_of_memory_at_batch_one_fails_the_cell_and_the_others_run(mini_suite, tiny_model_dir, tmp_path):
    records, _ = run(mini_suite, tiny_model_dir, tmp_path, ["oom-always", "zero-shot"])
    assert [r.status for r in records] == ["failed", "ok"]
    assert "OutOfMemoryError" in records[0].error and "batch 1 > 0" in records[0].error


def test_a_full_disk_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    target = tmp_path / "record.json"
    atomic_write_text(target, '{"old": true}')

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(target, '{"new": true}')
    assert target.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]  # no temp file left


def test_a_second_holder_of_the_folder_lock_is_refused_until_it_is_released(tmp_path):
    with exclusive(tmp_path / "mini"), pytest.raises(HarnessError, match="in use by another harness run"), \
            exclusive(tmp_path / "mini"):
        pass
    with exclusive(tmp_path / "mini"):  # released: taken again
        pass


def test_compare_refuses_a_folder_in_use(tmp_path, mini_suite_dir, tiny_model_dir):
    with exclusive(tmp_path / "mini"):
        proc = subprocess.run([sys.executable, "-m", "harness", "compare", "--suite", str(mini_suite_dir),
                               "--strategies", "zero-shot", "--out", str(tmp_path), "--model", str(tiny_model_dir),
                               "--no-retention"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "in use by another harness run (pid" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "mini" / "cells").exists()


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "harness", "--debug", "compare", "--suite", "no-such-suite"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "unknown suite" in proc.stderr
