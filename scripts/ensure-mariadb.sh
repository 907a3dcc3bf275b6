#!/usr/bin/env bash
# Makes sure the MariaDB server binaries are installed: installs them when run
# as root, otherwise says how.
set -euo pipefail
if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "MariaDB server not found: installing mariadb-server with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq mariadb-server >/dev/null
  exit 0
fi
echo "MariaDB server not found: install it with 'sudo apt-get install mariadb-server' and run this again" >&2
exit 1
