"""The third-Tuesday patch window example through the real `next` command: the patch job's next
fire times are third Tuesdays, and another job's slots inside the window are marked skipped."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from tests.conftest import ROOT

Run = Callable[..., subprocess.CompletedProcess[str]]
EXAMPLE = str(ROOT / "examples" / "patch-window.yaml")


def test_next_lists_the_third_tuesdays_of_the_patch_job(reconciler: Run) -> None:
    r = reconciler("next", "os-patching", "--dir", EXAMPLE, "--after", "2027-08-01T00:00:00Z", "-n", "3",
                   "--format", "json")
    assert r.returncode == 0, r.stderr
    # August 2027 starts on a Sunday (the 17th), September on a Wednesday (the 21st), October on a Friday.
    assert json.loads(r.stdout)["next"] == ["2027-08-17T00:00:00Z", "2027-09-21T00:00:00Z", "2027-10-19T00:00:00Z"]


def test_next_marks_another_jobs_slots_inside_the_patch_window_skipped(reconciler: Run) -> None:
    r = reconciler("next", "inventory-sync", "--dir", EXAMPLE, "--after", "2027-09-20T23:45:00Z", "-n", "10")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()[1:]
    assert lines[0].startswith("  2027-09-21 02:00:00 CEST (Tue)")
    assert all("skipped: window: inside window patch-window (deny cron '0 2 * * 2#3' for 4h)" in x
               for x in lines[:8])
    assert lines[8].startswith("  2027-09-21 06:00:00 CEST (Tue)")
    assert "skipped" not in lines[8] + lines[9]
