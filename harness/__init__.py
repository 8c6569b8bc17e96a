"""harness: run every LLM adaptation strategy on the same suites and decide from one report."""

__version__ = "0.1.0"
