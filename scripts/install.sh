#!/usr/bin/env bash
# Install what the demo and the tests need on Debian 12: the real stack from
# Debian's packages, then this project and its test tools with pip, in .venv
# (Debian's own python3 refuses system-wide pip installs).
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(openssh-server openssh-client jetty9 tomcat10 tomcat10-admin haproxy wrk socat tini
          default-jdk-headless liblogback-java libslf4j-java procps iproute2 iptables curl
          python3-venv sudo)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # Debian's maintainer scripts must not start the system services: the
  # sandbox starts its own on loopback.
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  $sudo rm -f /usr/sbin/policy-rc.d
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
