"""Named kill points, for crash tests. With HARNESS_KILL_AT=<point>[:<n>] the process kills itself
with SIGKILL the n-th time (default: the first) it reaches <point>: no cleanup, no finally blocks,
like a power cut or the OOM killer. Unset, which is always the case outside tests, a point costs
one environment lookup.

Points: run-start, cell-start, adapted, task-done, retention-base, train-checkpoint, atomic-write,
between-cells, report-records, report-json, report-md, convert, remote-push.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_reached: Counter[str] = Counter()


def kill_point(name: str) -> None:
    spec = os.environ.get("HARNESS_KILL_AT")
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
