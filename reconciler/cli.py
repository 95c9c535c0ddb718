"""The command line: each command parses options and calls one function that returns an exit code."""

from __future__ import annotations

from typing import Annotated

import typer

from reconciler.errors import exit_code_of

app = typer.Typer(
    name="reconciler",
    help="Declarative, GitOps-style job scheduler: schedules as YAML in git, reconciled into a live scheduler.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Format = Annotated[str, typer.Option("--format", "-f", help="text, json or github.")]


@app.command()
def validate(
    paths: Annotated[list[str] | None, typer.Argument(help="Files or directories (default: schedules/).")] = None,
    fmt: Format = "text",
) -> None:
    """Check schedule files: YAML strictness, the JSON Schema, cron, time zones, unique names."""
    from reconciler.commands.validate import validate as run

    raise typer.Exit(exit_code_of(run)(paths or [], fmt))


@app.command()
def schema() -> None:
    """Print the JSON Schema of a schedule file (draft 2020-12)."""
    from reconciler.commands.schema import schema as run

    raise typer.Exit(run())


@app.command("next")
def next_(
    name: Annotated[str | None, typer.Argument(help="A schedule's name in --dir.")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="A cron expression instead of a NAME.")] = None,
    timezone: Annotated[str, typer.Option("--timezone", "--tz", help="IANA zone for --cron.")] = "UTC",
    after: Annotated[str | None, typer.Option("--after", help="RFC 3339 instant (default: now).")] = None,
    count: Annotated[int, typer.Option("-n", help="How many fire times.")] = 5,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    directory: Annotated[str, typer.Option("--dir", help="Schedules directory.")] = "schedules",
) -> None:
    """Show the next fire times of a schedule or of a cron expression."""
    from reconciler.commands.next import next_times

    raise typer.Exit(exit_code_of(next_times)(name, cron, timezone, after, count, fmt, directory))


def main() -> None:
    app()
