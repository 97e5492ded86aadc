"""The app directory on the coordinator: ``.config`` and its key table, the WAR and
the release it makes, config files with their per-host overrides, extensions,
Maven's version order. Parsed once into frozen objects; nothing here talks to a node."""
