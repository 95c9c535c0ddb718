"""The imperative engine: APScheduler as the timer, the runner, and applying plans."""
