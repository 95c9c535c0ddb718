"""The command line: each command parses options and calls one function that returns an exit code.

`reconciler.cli.main` comes here for everything but `validate` with nothing but paths."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated

import typer

from reconciler import __version__
from reconciler.cli import STRICT_CRON_ENV
from reconciler.errors import DEBUG_ENV, EXIT_INTERRUPTED, EXIT_PROBLEMS, EXIT_USAGE, handle

try:  # newer typer carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # older typer uses click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]

app = typer.Typer(
    name="reconciler",
    help="Declarative, GitOps-style job scheduler: schedules as YAML in git, reconciled into a live scheduler.",
    # No command: help, then exit 64 (a usage error) whatever click's version does with no_args_is_help.
    invoke_without_command=True,
    # typer's completion costs nothing at start-up: its options are parsed like any other, and the
    # completion request itself is answered before any command is imported.
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


# Choices as enums, so that --help lists the allowed values and click refuses others (exit 64).
class TextOrJson(StrEnum):
    text = "text"
    json = "json"


class ValidateFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"


class PlanFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


class RunStatus(StrEnum):
    """The ledger's run states (`reconciler.core.policy.RUN_STATES`; a test keeps them equal)."""

    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    timed_out = "timed_out"
    cancelled = "cancelled"
    skipped = "skipped"
    missed = "missed"
    interrupted = "interrupted"
    abandoned = "abandoned"


def _version(value: bool) -> None:
    if value:
        print(f"reconciler {__version__}")
        raise typer.Exit(0)


class Settings:
    """What the root options set for `main`, which handles the errors the command raises."""

    debug = False


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.", is_eager=True,
                                          callback=_version)] = False,
    debug: Annotated[bool, typer.Option("--debug", envvar=DEBUG_ENV, show_envvar=True,
                                        help="Print the traceback of an error.")] = False,
) -> None:
    if isinstance(ctx.obj, Settings):
        ctx.obj.debug = debug
    if ctx.invoked_subcommand is None:
        text = ctx.get_help()  # typer's rich help prints itself and returns ""
        if text:
            print(text)
        raise typer.Exit(EXIT_USAGE)


Directory = Annotated[str, typer.Option("--dir", metavar="DIR", help="Schedules directory.")]
# A SQLite path or a postgresql:// URL; from the environment when --ledger is not given.
LEDGER_ENV = "RECONCILER_LEDGER"
LedgerPath = Annotated[str, typer.Option("--ledger", metavar="PATH", envvar=LEDGER_ENV,
                                         help="SQLite ledger path or postgresql:// URL.")]
Format = Annotated[TextOrJson, typer.Option("--format", "-f", help="Output format.")]
StrictCron = Annotated[bool, typer.Option(
    "--strict-cron", envvar=STRICT_CRON_ENV, show_envvar=True,
    help="Refuse the cron extensions beyond cronie (L, W, #): plain cron only.")]
STATES = ", ".join(RunStatus)


@app.command()
def validate(
    paths: Annotated[list[str] | None, typer.Argument(
        metavar="PATH...", help="Files or directories (default: schedules/).", show_default=False)] = None,
    fmt: Annotated[ValidateFormat, typer.Option("--format", "-f", help="Output format.")] = ValidateFormat.text,
    strict_cron: StrictCron = False,
    selector: Annotated[list[str] | None, typer.Option(
        "--selector", metavar="KEY=VALUE", help="A shard of `run --selector`: no dependency may cross it.")] = None,
    effective: Annotated[bool, typer.Option(
        "--effective", help="Print each schedule under directory defaults as it runs, with origins.")] = False,
) -> None:
    """Check schedule files: YAML strictness, the JSON Schema, cron, time zones, unique names, dependencies."""
    from reconciler.commands.validate import validate as run

    raise typer.Exit(run(paths or [], fmt.value, strict_cron=strict_cron, selector=selector or [],
                         effective=effective))


@app.command()
def schema(
    output: Annotated[str | None, typer.Option(
        "--output", "-o", metavar="FILE", help="Write it to FILE (a copy for offline editors).")] = None,
    defaults: Annotated[bool, typer.Option(
        "--defaults", help="The schema of a directory's _defaults.yaml instead.")] = False,
) -> None:
    """Print the JSON Schema of a schedule file (draft 2020-12), or write it to a file."""
    from reconciler.commands.schema import schema as run

    raise typer.Exit(run(output, defaults=defaults))


@app.command()
def show(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A schedule's name in --dir.")],
    effective: Annotated[bool, typer.Option(
        "--effective", help="As it runs: directory defaults merged in, with the file:line of each.")] = False,
    fmt: Format = TextOrJson.text,
    directory: Directory = "schedules",
) -> None:
    """Show a schedule's spec, its upstreams and downstreams; --effective with its directory defaults."""
    from reconciler.commands.show import show as run

    raise typer.Exit(run(name, directory, effective, fmt.value))


@app.command("next")
def next_(
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="A schedule's name in --dir.")] = None,
    cron: Annotated[str | None, typer.Option("--cron", metavar="EXPR", help="A cron expression, not a NAME.")] = None,
    timezone: Annotated[str, typer.Option("--timezone", "--tz", metavar="TZ", help="IANA zone for --cron.")] = "UTC",
    after: Annotated[str | None, typer.Option("--after", metavar="TIME", help="RFC 3339 (default: now).")] = None,
    count: Annotated[int, typer.Option("-n", metavar="N", help="How many fire times.")] = 5,
    fmt: Format = TextOrJson.text,
    directory: Directory = "schedules",
    ledger: Annotated[str | None, typer.Option(
        "--ledger", metavar="PATH", help="Mark the slots an operator's pause in this ledger skips.",
        show_default=False)] = None,
) -> None:
    """Show the next fire times of a schedule or of a cron expression."""
    from reconciler.commands.next import next_times

    raise typer.Exit(next_times(name, cron, timezone, after, count, fmt.value, directory, ledger_path=ledger))


@app.command()
def plan(
    directory: Directory = "schedules",
    base: Annotated[str | None, typer.Option(
        "--base", metavar="REF", help="Compare with the directory at this git ref.")] = None,
    ledger: Annotated[str | None, typer.Option(
        "--ledger", metavar="PATH", envvar=LEDGER_ENV, help="Compare with the revision last applied; with --base, "
        "only warn of removed schedules that ran in the last day.")] = None,
    fmt: Annotated[PlanFormat, typer.Option("--format", "-f", help="Output format.")] = PlanFormat.text,
    strict_cron: StrictCron = False,
) -> None:
    """Show what would change and when it would fire. Exit 0 no changes, 2 changes, 1 errors, 64 usage."""
    from reconciler.commands.plan import run_plan

    raise typer.Exit(run_plan(directory, base, ledger, fmt.value, strict_cron=strict_cron))


@app.command()
def run(
    directory: Annotated[str, typer.Option(
        "--dir", metavar="DIR", help="Schedules directory (a git-sync link too).")] = "schedules",
    ledger: LedgerPath = ".reconciler/ledger.db",
    allow_empty: Annotated[bool, typer.Option("--allow-empty", help="Apply a revision removing all.")] = False,
    rescan: Annotated[str, typer.Option(
        "--rescan", metavar="DURATION", help="Full rescan interval (catches lost events): 60s, 1m or 60.")] = "60s",
    selector: Annotated[list[str] | None, typer.Option(
        "--selector", metavar="KEY=VALUE", help="Only schedules with this label.")] = None,
    log_format: Annotated[TextOrJson, typer.Option("--log-format", help="Log format.")] = TextOrJson.text,
    grace: Annotated[str, typer.Option(
        "--grace", metavar="DURATION", help="Time running jobs get to finish on SIGTERM.")] = "25s",
    listen: Annotated[str, typer.Option(
        "--listen", metavar="HOST:PORT", help="Where to serve the API and dashboard, or none.")] = "127.0.0.1:8080",
    token_file: Annotated[str | None, typer.Option(
        "--token-file", metavar="PATH", help="Named tokens with roles (read, operate): allows operator actions "
        "over HTTP.")] = None,
    read_token_required: Annotated[bool, typer.Option(
        "--read-token-required", help="Every read of the API and /metrics needs a token too (not /healthz, /readyz).")
    ] = False,
    public_url: Annotated[str | None, typer.Option(
        "--public-url", metavar="URL", help="Dashboard URL for links.")] = None,
    allowed_host: Annotated[list[str] | None, typer.Option(
        "--allowed-host", metavar="HOST", help="Another name the HTTP server answers to (localhost, IPs, --listen's "
        "and --public-url's host always).")] = None,
    heartbeat: Annotated[str, typer.Option(
        "--heartbeat", metavar="DURATION", help="How often this replica renews its leases in the ledger.")] = "5s",
    lease: Annotated[str, typer.Option(
        "--lease", metavar="DURATION", help="How long a run is kept without renewal before others abandon it "
        "(at least twice --heartbeat).")] = "20s",
    strict_cron: StrictCron = False,
    max_running: Annotated[int | None, typer.Option(
        "--max-running", metavar="N", envvar="RECONCILER_MAX_RUNNING", show_default=False,
        help="Runs at once, at most; more wait (queued) within their starting_deadline, then are missed "
        "(pool). Default: 32 per CPU.")] = None,
) -> None:
    """Run the reconciler: apply the directory, watch it, run the jobs, until SIGINT/SIGTERM."""
    from reconciler.commands.run import run as run_command

    raise typer.Exit(run_command(directory, ledger, allow_empty, rescan, selector or [], log_format.value, grace,
                                 listen, token_file, public_url, allowed_hosts=allowed_host or [],
                                 heartbeat=heartbeat, lease=lease, strict_cron=strict_cron,
                                 max_running=max_running, read_token_required=read_token_required))


@app.command()
def history(
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="Only this schedule's runs.")] = None,
    status: Annotated[RunStatus | None, typer.Option(
        "--status", metavar="STATE", help=f"Only runs in this state: {STATES}.", show_default=False)] = None,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="WHEN", help="A duration ago (1h) or an RFC 3339 time.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", metavar="N", help="At most this many runs.")] = 50,
    ledger: LedgerPath = ".reconciler/ledger.db",
    fmt: Format = TextOrJson.text,
    run_id: Annotated[int | None, typer.Option("--run", metavar="ID", help="Show one run with its output.")] = None,
) -> None:
    """Show what ran, newest first."""
    from reconciler.commands.history import history as run_history

    raise typer.Exit(run_history(name, status.value if status else None, since, limit, ledger, fmt.value, run_id))


@app.command()
def audit(
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="Only this schedule's changes.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="WHEN", help="A duration ago (7d) or an RFC 3339 time.")] = None,
    ledger: LedgerPath = ".reconciler/ledger.db",
    fmt: Format = TextOrJson.text,
) -> None:
    """Show, per schedule, the commits that changed it: author, time, subject and the field diff."""
    from reconciler.commands.audit import audit as run_audit

    raise typer.Exit(run_audit(name, since, ledger, fmt.value))


@app.command()
def activity(
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="Only actions on this schedule.")] = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="How many, newest first.")] = 50,
    ledger: LedgerPath = ".reconciler/ledger.db",
    fmt: Format = TextOrJson.text,
) -> None:
    """Show operators' actions (trigger, pause, resume, backfill, bulk): who, when, what and why."""
    from reconciler.commands.activity import activity as run_activity

    raise typer.Exit(run_activity(name, ledger, fmt.value, limit))


@app.command()
def trigger(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The schedule to run now.")],
    directory: Directory = "schedules",
    ledger: LedgerPath = ".reconciler/ledger.db",
    fmt: Format = TextOrJson.text,
) -> None:
    """Run a schedule now, as a manual run recorded in the ledger. Exit 0 if it succeeded."""
    from reconciler.commands.trigger import trigger as run_trigger

    raise typer.Exit(run_trigger(name, directory, ledger, fmt.value))


Selector = Annotated[list[str] | None, typer.Option(
    "--selector", metavar="KEY=VALUE", help="Schedules with this label (repeat: all of them), instead of NAMEs.")]


@app.command()
def pause(
    names: Annotated[list[str] | None, typer.Argument(
        metavar="NAME...", help="Schedules to pause.", show_default=False)] = None,
    selector: Selector = None,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why (shown with every skipped slot).")] = "",
    until: Annotated[str | None, typer.Option(
        "--until", metavar="TIME", help="Resume by itself then (RFC 3339).", show_default=False)] = None,
    for_: Annotated[str | None, typer.Option(
        "--for", metavar="DURATION", help="Resume by itself after this long (2h).", show_default=False)] = None,
    listing: Annotated[bool, typer.Option("--list", help="List the active pauses instead.")] = False,
    ledger: LedgerPath = ".reconciler/ledger.db",
    fmt: Format = TextOrJson.text,
) -> None:
    """Pause schedules: their slots are recorded skipped (reason paused) until resumed or --until/--for."""
    from reconciler.commands.pause import pause as run_pause

    raise typer.Exit(run_pause(names or [], selector or [], reason, until, for_, ledger, fmt.value,
                               listing=listing))


@app.command()
def resume(
    names: Annotated[list[str] | None, typer.Argument(
        metavar="NAME...", help="Schedules to resume.", show_default=False)] = None,
    selector: Selector = None,
    ledger: LedgerPath = ".reconciler/ledger.db",
    fmt: Format = TextOrJson.text,
) -> None:
    """Resume paused schedules: their next slots run again."""
    from reconciler.commands.pause import resume as run_resume

    raise typer.Exit(run_resume(names or [], selector or [], ledger, fmt.value))


@app.command()
def backfill(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The schedule whose past slots to run.")],
    start: Annotated[str, typer.Option("--from", metavar="TIME", help="First instant (RFC 3339), included.")],
    end: Annotated[str, typer.Option("--to", metavar="TIME", help="Last instant (RFC 3339), excluded; not "
                                     "in the future.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the slots and what happens to each.")] = False,
    parallel: Annotated[int, typer.Option("--parallel", metavar="N", help="Run up to N slots at once.")] = 1,
    max_slots: Annotated[int, typer.Option("--max", metavar="M", help="Refuse more slots than this.")] = 1000,
    directory: Directory = "schedules",
    ledger: LedgerPath = ".reconciler/ledger.db",
    fmt: Format = TextOrJson.text,
) -> None:
    """Run the slots of [--from, --to) that have no run yet, in order, as `backfill` runs. Exit 0 if all succeeded."""
    from reconciler.commands.backfill import backfill as run_backfill

    raise typer.Exit(run_backfill(name, start, end, dry_run=dry_run, parallel=parallel, max_slots=max_slots,
                                  directory=directory, ledger_path=ledger, fmt=fmt.value))


@app.command()
def status(
    server: Annotated[str | None, typer.Option("--server", metavar="URL",
                                               help="Ask a running daemon (its --listen URL).")] = None,
    ledger: Annotated[str | None, typer.Option("--ledger", metavar="PATH", envvar=LEDGER_ENV,
                                               help="Read the ledger (SQLite path or postgresql:// URL); "
                                                    "the default without --server.")] = None,
    fmt: Format = TextOrJson.text,
) -> None:
    """Applied revision, runs by state, failing schedules, replicas and next fire times."""
    from reconciler.commands.status import status as run_status

    raise typer.Exit(run_status(server, ledger, fmt.value))


@app.command()
def init(
    directory: Annotated[str, typer.Argument(metavar="DIR", help="Where to create the repository.")] = ".",
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
) -> None:
    """Create a schedules repository: an example schedule, the CI workflow, the pre-commit config, a README."""
    from reconciler.commands.init import init as run_init

    raise typer.Exit(run_init(directory, force))


ledger_app = typer.Typer(help="Work on a whole ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("copy")
def ledger_copy(
    source: Annotated[str, typer.Argument(metavar="SRC", help="The ledger to copy: SQLite path or postgresql:// URL.")],
    destination: Annotated[str, typer.Argument(metavar="DST", help="An empty ledger: path or URL.")],
    fmt: Format = TextOrJson.text,
) -> None:
    """Copy runs, revisions and specs into an empty ledger (SQLite <-> PostgreSQL), while no reconciler uses either."""
    from reconciler.commands.ledger import copy

    raise typer.Exit(copy(source, destination, fmt.value))


def main(argv: Sequence[str] | None = None) -> int:
    """The `reconciler` command, and the one handler of what a command raises. click's own usage
    errors exit 64 too, like every other usage error."""
    settings = Settings()
    try:
        code = app(args=argv, standalone_mode=False, obj=settings)
    except click_errors.UsageError as e:
        e.show()
        return EXIT_USAGE
    except click_errors.ClickException as e:
        e.show()
        return EXIT_PROBLEMS
    except typer.Abort as e:  # click turns Ctrl-C into Abort
        if isinstance(e.__cause__, KeyboardInterrupt):
            return EXIT_INTERRUPTED
        print("Aborted!", file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:  # outside a command (click turns one inside into Abort)
        return EXIT_INTERRUPTED
    except Exception as e:
        return handle(e, debug=settings.debug)
    return code if isinstance(code, int) else 0
