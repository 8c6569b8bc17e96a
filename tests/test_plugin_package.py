"""The plugin contract from the outside: a separate package (examples/harness-plugin-example) with
an entry point in `harness.strategies`, pip-installed into this environment, runs through
`harness compare`; the autoload switches hide it; a single file works through --plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).parent.parent / "examples" / "harness-plugin-example"


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True, capture_output=True, timeout=600)


def harness(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_PLUGINS", "HARNESS_DISABLE"))}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=600,
                          env={**clean, "COLUMNS": "200", **(env or {})}, cwd=cwd)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    import shutil

    source = shutil.copytree(EXAMPLE, tmp_path_factory.mktemp("plugin") / "example")  # builds write there
    pip("install", "--no-deps", str(source))
    yield
    pip("uninstall", "-y", "harness-plugin-example")


def test_installed_plugin_is_listed_and_runs_through_compare(installed, tmp_path, mini_suite_dir, tiny_model_dir):
    listing = harness("strategies")
    assert listing.returncode == 0 and "persona" in listing.stdout and "harness-plugin-example" in listing.stdout
    assert "last-mlp" in listing.stdout  # the weight strategy of the same package
    run = harness("compare", "--suite", str(mini_suite_dir), "--model", str(tiny_model_dir), "--strategies",
                  "zero-shot,persona", "--out", str(tmp_path), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "ok persona seed 0" in run.stdout


@pytest.mark.parametrize(("env", "visible"), [
    ({"HARNESS_DISABLE_PLUGIN_AUTOLOAD": "1"}, False),
    ({"HARNESS_PLUGINS": ""}, False),
    ({"HARNESS_PLUGINS": "some-other-plugin"}, False),
    ({"HARNESS_PLUGINS": "harness-plugin-example"}, True),
])
def test_autoload_switches(installed, env, visible):
    listing = harness("strategies", env=env)
    assert listing.returncode == 0
    assert ("persona" in listing.stdout) is visible
    assert "zero-shot" in listing.stdout  # the built-ins always load


def test_the_same_plugin_as_a_single_file(tmp_path, mini_suite_dir, tiny_model_dir):
    run = harness("compare", "--suite", str(mini_suite_dir), "--model", str(tiny_model_dir), "--strategies",
                  "persona", "--plugin", str(EXAMPLE / "harness_plugin_example.py"), "--out", str(tmp_path),
                  "--no-retention", env={"HARNESS_DISABLE_PLUGIN_AUTOLOAD": "1"}, cwd=tmp_path)
    assert run.returncode == 0, run.stderr


def test_minimal_plugin_is_under_40_lines_with_its_registration():
    module = (EXAMPLE / "harness_plugin_example.py").read_text().splitlines()
    pyproject = (EXAMPLE / "pyproject.toml").read_text().split("\n\n")
    registration = next(block for block in pyproject if "harness.strategies" in block).splitlines()
    assert len(module) + len(registration) < 40
