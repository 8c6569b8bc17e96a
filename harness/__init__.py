"""harness: decide how to adapt an LLM to your domain.

    import harness
    run = harness.compare({"suite": "legal-qa", "strategies": ["zero-shot", "few-shot"], "limit": 10})

`compare`, `recommend`, `load_run` and `tune` live in harness.api; they are imported on first use,
so `import harness` stays instant and has no side effects.
"""

from __future__ import annotations

from typing import Any

from harness.core.version import __version__

__all__ = ["__version__", "compare", "load_run", "recommend", "tune"]


def __getattr__(name: str) -> Any:
    if name in ("compare", "load_run", "recommend", "tune"):
        from harness import api

        return getattr(api, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
