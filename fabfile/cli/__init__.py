"""The command line: the ``deploy`` program, its flags and help, and the Invoke tasks
that ``inv`` and ``fab`` find; the one place where an error becomes an exit code."""
