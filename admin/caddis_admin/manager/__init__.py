"""admin's logic: registration, executions, events, hand-over, schedules and quotas."""
