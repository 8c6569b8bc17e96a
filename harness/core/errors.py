"""Typed errors. `HarnessError` means bad user input: the CLI prints it on one line and exits 2."""

from __future__ import annotations

from typing import Any


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


def validation_problems(where: str, err: Any) -> list[str]:
    """Every error of a pydantic ValidationError as `where: field 'a.b': message`."""
    out = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        out.append(f"{where}: field '{loc}': {e['msg']}")
    return out


def validation_message(where: str, err: Any) -> str:
    """The first error of a pydantic ValidationError on one line, with how many more there are."""
    first = validation_problems(where, err)[0]
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return first + more
