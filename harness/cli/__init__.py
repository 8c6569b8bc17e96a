"""The `harness` command line. Each subcommand is one module; they only parse and call the library."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

from harness.cli import compare, plan, recommend, report, strategies, suites, tune
from harness.core.errors import HarnessError, SuiteError

app = typer.Typer(
    name="harness",
    help=(
        "Decide how to adapt an LLM to your domain. Runs every strategy (prompting, few-shot, and the "
        "plugins you add) on the same task suites through one runtime, and writes one report with "
        "accuracy, forgetting, cost and latency per strategy, and a recommendation under your constraints.\n\n"
        "Input errors print one line each and exit 2; --debug (or HARNESS_DEBUG=1) shows their traceback."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Show the traceback of input errors.")) -> None:
    if debug:
        os.environ["HARNESS_DEBUG"] = "1"


app.command("compare")(compare.compare)
app.command("strategies")(strategies.strategies)
app.add_typer(suites.app, name="suites")
app.command("report")(report.report)
app.command("recommend")(recommend.recommend)
app.command("tune")(tune.tune)
app.command("plan")(plan.plan)

err = Console(stderr=True, highlight=False)


def main() -> None:
    """Entry point: input errors print one line per problem and exit 2, without a traceback."""
    from harness.core.quiet import silence_known_noise

    silence_known_noise()
    try:
        app()
    except HarnessError as e:
        if os.environ.get("HARNESS_DEBUG"):
            raise
        problems = e.problems if isinstance(e, SuiteError) else [str(e)]
        for p in problems[:20]:
            err.print(f"[bold red]error:[/] {escape(p)}", markup=True, soft_wrap=True)  # text, not markup
        if len(problems) > 20:
            err.print(f"... and {len(problems) - 20} more problems")
        sys.exit(2)
