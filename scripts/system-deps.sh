#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (sshd for the SSH fixtures, chromium for the report test,
# PostgreSQL for the team store's fixture: tests/postgres.py), only those missing (root or sudo required then).
set -euo pipefail
need=()
command -v /usr/sbin/sshd >/dev/null 2>&1 || need+=(openssh-server)
(command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1) || need+=(chromium)
(command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null) || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing system packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
