#!/usr/bin/env bash
# Makes sure headless Chromium is installed for the console's browser tests:
# installs Debian's chromium when run as root, otherwise says how.
set -euo pipefail
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then
    exit 0
  fi
done
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Chromium not found: installing chromium with apt-get (the console's browser tests)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium fonts-dejavu-core ca-certificates >/dev/null
  exit 0
fi
echo "Chromium not found: install it with 'sudo apt-get install chromium' and run this again" >&2
exit 1
