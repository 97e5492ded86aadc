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
exec python -m pytest -q "$@"
