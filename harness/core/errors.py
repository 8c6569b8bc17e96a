"""Typed errors. `HarnessError` means bad user input: the CLI prints it on one line and exits 2."""

from __future__ import annotations


class HarnessError(Exception):
    """A problem with what the user gave us (suite, config, flag). Exit code 2, no traceback."""


class SuiteError(HarnessError):
    """One or more problems in a suite, each located by file, line and field."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)


class Unsupported(Exception):
    """Raised by a strategy that cannot run here (no CUDA, model too large...). The cell is skipped."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)
