"""Where a record came from: versions, git state, hardware, time."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from harness.core.precision import compute_dtype
from harness.core.records import Provenance
from harness.core.version import __version__

PACKAGES = ("torch", "transformers", "peft", "bitsandbytes", "accelerate", "sentence-transformers",
            "faiss-cpu", "datasets", "numpy", "pydantic")


def now(precise: bool = False) -> str:
    """UTC now, ISO 8601: to the second for records, to the microsecond with `precise`."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds" if precise else "seconds")


@cache
def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


@cache
def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the harness source checkout, or (None, None) outside a git work tree."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(status.strip())


def accelerator_name(device: str) -> str | None:
    if not device.startswith("cuda"):
        return None
    import torch

    return str(torch.cuda.get_device_name(0))


def provenance(device: str, started_at: str, trust_remote_code: bool = False) -> Provenance:
    commit, dirty = git_state()
    return Provenance(
        harness_version=__version__,
        packages=package_versions(),
        git_commit=commit,
        git_dirty=dirty,
        python=platform.python_version(),
        platform=platform.platform(),
        cpu_count=os.cpu_count() or 0,
        device=device,
        accelerator=accelerator_name(device),
        started_at=started_at,
        finished_at=now(),
        trust_remote_code=trust_remote_code,
        compute_dtype=compute_dtype(device),
    )
