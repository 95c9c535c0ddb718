"""schedule-reconciler: schedules as YAML in git, reconciled into a live scheduler."""

__version__ = "0.1.0"
