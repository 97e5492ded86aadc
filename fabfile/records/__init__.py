"""Local records in the app directory: the history of runs, the archive of config
files, the lock."""
