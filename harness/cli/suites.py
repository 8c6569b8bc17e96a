"""`harness suites`: list the suites found on the suite path and validate them."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="List, validate and inspect task suites.", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def suites(ctx: typer.Context) -> None:
    """List every suite on the suite path ($HARNESS_SUITES_PATH, ./suites, the built-ins) and validate
    it: tasks, items per split, corpus size, or the first problem found."""
    if ctx.invoked_subcommand is not None:
        return
    from harness.errors import SuiteError
    from harness.suites import available_suites, load_suite_dir

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


@app.command("check")
def check(suite: str = typer.Argument(..., help="A suite name or folder.")) -> None:
    """Validate SUITE and print every problem (file, line, field). Exit 2 when there are any."""
    from harness.suites import load_suite

    s = load_suite(suite)
    console = Console()
    console.print(f"[green]ok[/] {s.name}: {len(s.tasks)} tasks, {len(s.corpus)} corpus documents")
    for t in s.tasks:
        console.print(f"  {t.name} ({t.kind}): train {len(t.train)}, dev {len(t.dev)}, test {len(t.test)}")
