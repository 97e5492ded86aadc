"""What the user sees: the live progress and tables, the dry run's plan, the timeline."""
