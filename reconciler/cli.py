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


@app.command()
def plan(
    directory: Annotated[str, typer.Option("--dir", help="Schedules directory.")] = "schedules",
    base: Annotated[str | None, typer.Option("--base", help="Compare with the directory at this git ref.")] = None,
    ledger: Annotated[str | None, typer.Option("--ledger", help="Compare with the revision last applied.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, json or markdown.")] = "text",
) -> None:
    """Show what would change and when it would fire. Exit 0 no changes, 2 changes, 1 errors."""
    from reconciler.commands.plan import run_plan

    raise typer.Exit(exit_code_of(run_plan)(directory, base, ledger, fmt))


@app.command()
def run(
    directory: Annotated[str, typer.Option("--dir", help="Schedules directory (a git-sync link too).")] = "schedules",
    ledger: Annotated[str, typer.Option("--ledger", help="SQLite ledger path.")] = ".reconciler/ledger.db",
    allow_empty: Annotated[bool, typer.Option("--allow-empty", help="Apply a revision removing all.")] = False,
    rescan: Annotated[str, typer.Option("--rescan", help="Full rescan interval (catches lost events).")] = "60s",
    selector: Annotated[list[str] | None, typer.Option("--selector", help="Only labels key=value.")] = None,
    log_format: Annotated[str, typer.Option("--log-format", help="text or json.")] = "text",
    grace: Annotated[str, typer.Option("--grace", help="Time running jobs get to finish on SIGTERM.")] = "25s",
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT for the API and dashboard, or none.")] = (
        "127.0.0.1:8080"),
    token_file: Annotated[str | None, typer.Option("--token-file", help="Allows operator actions over HTTP.")] = None,
    public_url: Annotated[str | None, typer.Option("--public-url", help="Dashboard URL for links.")] = None,
    allowed_host: Annotated[list[str] | None, typer.Option(
        "--allowed-host", help="Another name the HTTP server answers to (localhost, IPs, --listen's and "
        "--public-url's host always).")] = None,
) -> None:
    """Run the reconciler: apply the directory, watch it, run the jobs, until SIGINT/SIGTERM."""
    from reconciler.commands.run import run as run_command

    raise typer.Exit(exit_code_of(run_command)(directory, ledger, allow_empty, rescan, selector or [], log_format,
                                               grace, listen, token_file, public_url, allowed_hosts=allowed_host or []))


@app.command()
def history(
    name: Annotated[str | None, typer.Argument(help="Only this schedule's runs.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="Only runs in this state.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="A duration ago (1h) or an RFC 3339 time.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many runs.")] = 50,
    ledger: Annotated[str, typer.Option("--ledger", help="SQLite ledger path.")] = ".reconciler/ledger.db",
    fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    run_id: Annotated[int | None, typer.Option("--run", help="Show one run with its output.")] = None,
) -> None:
    """Show what ran, newest first."""
    from reconciler.commands.history import history as run_history

    raise typer.Exit(exit_code_of(run_history)(name, status, since, limit, ledger, fmt, run_id))


@app.command()
def trigger(
    name: Annotated[str, typer.Argument(help="The schedule to run now.")],
    directory: Annotated[str, typer.Option("--dir", help="Schedules directory.")] = "schedules",
    ledger: Annotated[str, typer.Option("--ledger", help="SQLite ledger path.")] = ".reconciler/ledger.db",
) -> None:
    """Run a schedule now, as a manual run recorded in the ledger. Exit 0 if it succeeded."""
    from reconciler.commands.trigger import trigger as run_trigger

    raise typer.Exit(exit_code_of(run_trigger)(name, directory, ledger))


def main() -> None:
    app()
