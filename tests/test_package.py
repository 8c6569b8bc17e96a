"""Installable as a package: a wheel built from this checkout, installed (non-editable) into a fresh
venv, has the built-in suites and finds them from outside the source tree."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parent.parent


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "COLUMNS": "250"}
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def test_a_wheel_ships_the_suites_and_finds_them_anywhere(tmp_path):
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                str(tmp_path / "dist"), str(ROOT), cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("harness-*.whl"))
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", str(venv), cwd=tmp_path).returncode == 0
    py = venv / "bin" / "python"
    # the dependencies come from this environment's site-packages (a .pth file), harness from the wheel only
    purelib = run(str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path)
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()] or [sysconfig.get_paths()["purelib"]]
    (Path(purelib.stdout.strip()) / "deps.pth").write_text("\n".join(deps) + "\n")
    installed = run(str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel), cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = run(str(py), "-c", "import harness, harness_suites; print(harness.__file__, harness_suites.__path__[0])",
                cwd=elsewhere)
    assert where.returncode == 0 and str(ROOT) not in where.stdout and "site-packages" in where.stdout, where
    listing = run(str(py), "-m", "harness", "suites", cwd=elsewhere)
    assert listing.returncode == 0, listing.stderr
    assert "legal-qa" in listing.stdout and "general" in listing.stdout and "site-packages" in listing.stdout
    check = run(str(py), "-m", "harness", "suites", "check", "legal-qa", cwd=elsewhere)
    assert check.returncode == 0, check.stdout + check.stderr
