"""`reconciler trigger NAME`: run a schedule now, as a `manual` run recorded in the ledger."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TextIO

from reconciler.commands.common import did_you_mean
from reconciler.commands.pause import who
from reconciler.core.loader import Loader
from reconciler.core.policy import RunStatus
from reconciler.errors import EXIT_PROBLEMS, FatalError, UsageError
from reconciler.ledger.base import Action


def trigger(name: str, directory: str, ledger_path: str, fmt: str = "text", out: TextIO = sys.stdout) -> int:
    from reconciler.commands.history import as_dict
    from reconciler.engine.runner import Runner
    from reconciler.ledger import open_ledger
    from reconciler.service.log import make_log

    if fmt not in ("text", "json"):
        raise UsageError(f"unknown format {fmt!r}: choose text or json")
    result = Loader().load_paths([directory])
    found = {s.name: s for s in result.schedules}
    if name not in found:
        raise FatalError(f"no valid schedule named {name!r} in {directory}{did_you_mean(name, found)}")
    ledger = open_ledger(ledger_path)
    try:
        last = ledger.last_revision()
        runner = Runner(ledger, log=make_log("text"), clock=lambda: datetime.now(UTC), max_workers=1)
        runner.update(found, last.revision if last else "manual")
        runner.start()  # a replica while the run lasts: it keeps the run's lease
        ledger.record_activity(who(), Action.TRIGGER, [name])
        try:
            run_id = runner.run_now(name)
        finally:
            runner.shutdown(0)
        record = ledger.run(run_id) if run_id is not None else None
    finally:
        ledger.close()
    if record is None:
        raise FatalError(f"{name}: the run was not started")
    if fmt == "json":  # the same record as `history --run ID --format json`
        json.dump(as_dict(record, with_output=True), out, indent=2)
        out.write("\n")
        return 0 if record.status == RunStatus.SUCCEEDED else EXIT_PROBLEMS
    out.write(f"run {record.id}: {record.status}" + (f" ({record.error})" if record.error else "") + "\n")
    if record.output:
        out.write(record.output + ("" if record.output.endswith("\n") else "\n"))
    return 0 if record.status == RunStatus.SUCCEEDED else EXIT_PROBLEMS
