#!/usr/bin/env bash
# The demo: install, bring up a 3-node sandbox (sshd + Jetty on 127.0.0.2-4,
# haproxy on 127.0.0.1:8000), show status, deploy the newest sample WAR, show
# status, roll back.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
exec inv demo
