"""What each command does, free of Invoke: one module per command, called by the
tasks in `fabfile.cli` and by the tests. Commands do not call commands."""
