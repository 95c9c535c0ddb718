"""The long-running service: watch loop, daemon wiring, logging."""
