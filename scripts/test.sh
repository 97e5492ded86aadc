#!/usr/bin/env bash
# The tests: install, lint, type-check, then the whole suite (unit tests and
# tests on the real stack: sshd, Jetty, haproxy on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
ruff format --check .
ruff check .
mypy
# Two workers, a file each at a time (module-scoped sandboxes stay whole): the real
# tests wait on JVMs, leases and load as much as they compute. Each worker's sandboxes
# have their own addresses (tests/conftest.py). WARDEPLOY_TEST_WORKERS=0: one process.
exec python -m pytest -q -n "${WARDEPLOY_TEST_WORKERS:-2}" --dist loadfile "$@"
