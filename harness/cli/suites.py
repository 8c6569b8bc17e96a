"""`harness suites`: list the suites found on the suite path, validate and check them, import datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from harness.data.hygiene import HygieneReport
    from harness.data.suites import Suite

app = typer.Typer(help="List, validate, check and import task suites.", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def suites(ctx: typer.Context) -> None:
    """List every suite on the suite path ($HARNESS_SUITES_PATH, ./suites, the built-ins) and validate
    it: tasks, items per split, corpus size, or the first problem found."""
    if ctx.invoked_subcommand is not None:
        return
    from harness.core.errors import SuiteError
    from harness.data.catalog import available_suites
    from harness.data.suites import load_suite_dir

    table = Table(title="suites")
    for col in ("name", "status", "tasks (train/dev/test)", "corpus docs", "path"):
        table.add_column(col)
    for name, path in available_suites().items():
        try:
            s = load_suite_dir(path)
        except SuiteError as e:
            table.add_row(name, f"[red]invalid[/]: {e.problems[0]}", "", "", str(path))
            continue
        tasks = ", ".join(f"{t.name} {len(t.train)}/{len(t.dev)}/{len(t.test)}" for t in s.tasks)
        table.add_row(name, "[green]ok[/]", tasks, str(len(s.corpus)), str(path))
    Console().print(table)


def _print_suite(console: Console, s: Suite) -> None:
    for t in s.tasks:
        console.print(f"  {t.name} ({t.kind}): train {len(t.train)}, dev {len(t.dev)}, test {len(t.test)}")
    for key, value in s.source.items():
        console.print(f"  source {key}: {escape(str(value))}", highlight=False)


def _findings_table(report: HygieneReport) -> Table:
    table = Table(title=f"hygiene of {report.suite}")
    for col in ("check", "task", "split", "items", "share", "examples", "what"):
        table.add_column(col)
    for f in report.findings:
        color = "red" if f.is_leak else "yellow"
        pairs = [f"{i} ({m})" if m else i for i, m in zip(f.ids[:3], f.matched[:3] or [""] * 3, strict=False)]
        table.add_row(f"[{color}]{f.kind}[/]", f.task, f.split, f"{f.count} of {f.of}", f"{f.share:.1%}",
                      escape(", ".join(pairs)), escape(f.detail))
    return table


def _balance_table(report: HygieneReport) -> Table:
    table = Table(title="label balance (items per label; multiple choice: per answer position)")
    for col in ("task", "split", "counts"):
        table.add_column(col)
    for b in report.balance:
        table.add_row(b.task, b.split, escape(", ".join(f"{label} {n}" for label, n in b.counts)))
    return table


def _summary(console: Console, report: HygieneReport) -> None:
    kinds = dict.fromkeys(f.kind for f in report.findings)
    counts = ", ".join(f"{report.count(k)} {k}" for k in kinds) or "nothing found"
    console.print(f"hygiene: {counts}", highlight=False)
    for line in report.over_threshold():
        console.print(f"[yellow]leak:[/] {escape(line)}", highlight=False)


def _pairs(console: Console, s: Suite, allow_leaks: bool) -> None:
    """The suite's preference pairs (`pairs` splits): how many, then every pair whose chosen and rejected
    answers are the same and every pair whose prompt is a test item (a leak: exit 2 unless allowed)."""
    from harness.core.errors import HarnessError
    from harness.data.pairs import pair_findings

    counts = [f"{t.name} {len(t.pairs)}" for t in s.tasks if t.pairs]
    if not counts:
        return
    findings = pair_findings(s)
    console.print(f"preference pairs: {', '.join(counts)}; {len(findings)} problems", highlight=False)
    table = Table(title="preference pair problems")
    for col in ("check", "task", "pair", "what"):
        table.add_column(col)
    for f in findings:
        table.add_row(f"[{'red' if f.is_leak else 'yellow'}]{f.kind}[/]", f.task, escape(f.pair_id), escape(f.detail))
    if findings:
        console.print(table)
    leaks = [f.pair_id for f in findings if f.is_leak]
    if leaks and not allow_leaks:
        raise HarnessError(f"suite {s.name!r}: {len(leaks)} preference pairs have a test item as prompt "
                           f"({', '.join(leaks[:5])}) (--allow-leaks to accept)")


@app.command("check")
def check(
    suite: str = typer.Argument(..., help="A suite name, folder, or <format>:<path>."),
    allow_leaks: bool = typer.Option(False, "--allow-leaks", help="Report leaks above the thresholds, exit 0."),
    leak_rate: float = typer.Option(0.01, min=0, max=1, help="Largest share of a task's test items that may be "
                                    "copies of train/dev items or sit in the corpus with their answer."),
    near_leak_rate: float = typer.Option(0.05, min=0, max=1, help="Largest share of near-duplicates."),
    max_chars: int = typer.Option(10_000, min=1, help="Report fields longer than this."),
) -> None:
    """Validate SUITE (every problem with file, line and field), then check its data hygiene:
    duplicates inside each split, test items repeated or nearly repeated in train or dev, test
    questions found with their answer in the corpus, label balance, empty or over-long fields, and
    preference pairs whose answers are the same or whose prompt is a test item. Exit 2 on any problem,
    or on leaks above the thresholds (any pair with a test prompt) unless --allow-leaks."""
    from harness.data import hygiene
    from harness.data.catalog import load_suite

    s = load_suite(suite, dedupe=False)
    console = Console()
    console.print(f"[green]ok[/] {s.name}: {len(s.tasks)} tasks, {len(s.corpus)} corpus documents")
    _print_suite(console, s)
    report = hygiene.check(s, hygiene.HygieneOptions(leak_rate=leak_rate, near_leak_rate=near_leak_rate,
                                                     max_chars=max_chars))
    if report.findings:
        console.print(_findings_table(report))
    if report.balance:
        console.print(_balance_table(report))
    _summary(console, report)
    _pairs(console, s, allow_leaks)
    if not allow_leaks:
        report.raise_for_leaks()


@app.command("import")
def import_(
    fmt: str = typer.Argument(..., metavar="FORMAT", help="contractnli, legalbench, mmlu or table."),
    source: str = typer.Argument(..., help="The dataset: a file or folder (table: also a hub dataset id)."),
    out: Path = typer.Option(..., "--out", help="The suite folder to write, e.g. suites/my-suite."),
    carve: bool = typer.Option(False, "--carve", help="Carve train/dev/test (70/15/15) from the evaluation rows."),
    seed: int = typer.Option(0, "--seed", help="Seed of the carving."),
    subjects: str = typer.Option("", "--subjects", help="Comma-separated MMLU subjects or LegalBench tasks."),
    mapping: Path | None = typer.Option(None, "--mapping", help="table: the column-mapping TOML."),
    force: bool = typer.Option(False, "--force", help="Replace the suite already in --out."),
) -> None:
    """Import SOURCE, a dataset in FORMAT, into a normal suite folder (suite.toml, JSONL splits, corpus/),
    validated like any suite, and print what was written and its hygiene summary. The suite is named
    after --out; the source table of its suite.toml records the source, the options and the carving."""
    from harness.data.formats import ImportOptions, import_suite
    from harness.data.hygiene import check as hygiene_check

    options = ImportOptions(carve=carve, seed=seed, mapping=mapping,
                            subjects=tuple(s.strip() for s in subjects.split(",") if s.strip()))
    s = import_suite(fmt, source, out, options, overwrite=force)
    console = Console()
    console.print(f"[green]wrote[/] {out}: suite {s.name}, {len(s.tasks)} tasks, {len(s.corpus)} corpus documents")
    _print_suite(console, s)
    _summary(console, hygiene_check(s))
    console.print(f"details: harness suites check {out}", highlight=False)
