"""Which installed plugins load (strategies, task kinds, dataset formats), as in pytest and llm.

Entry points of the `harness` distribution itself always load. HARNESS_DISABLE_PLUGIN_AUTOLOAD=1
loads no third-party entry point (a `--plugin` file still loads); HARNESS_PLUGINS=dist-a,dist-b
loads third-party entry points only from those distributions (empty: none).
"""

from __future__ import annotations

import os
from importlib.metadata import EntryPoint, entry_points

BUILTIN_DIST = "harness"


def plugin_allowed(dist: str) -> bool:
    """Whether entry points of distribution `dist` load, given the two environment variables."""
    if dist == BUILTIN_DIST:
        return True
    if os.environ.get("HARNESS_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    allow = os.environ.get("HARNESS_PLUGINS")
    return allow is None or dist in {d.strip() for d in allow.split(",") if d.strip()}


def allowed_entry_points(group: str) -> list[tuple[EntryPoint, str]]:
    """(entry point, distribution name) of `group` that may load."""
    out = []
    for ep in entry_points(group=group):
        dist = ep.dist.name if ep.dist else "?"
        if plugin_allowed(dist):
            out.append((ep, dist))
    return out
