#!/usr/bin/env bash
# The main job on the local sandbox: two throwaway MariaDB servers, a demo
# schema and a write workload on the source, then `pitcrew catchup`, status
# and a checksum comparison. Usage: scripts/demo.sh BIN SANDBOX_DIR
set -euo pipefail
bin=${1:-bin/pitcrew}
dir=${2:-.sandbox}
here=$(cd "$(dirname "$0")" && pwd)
"$here/ensure-mariadb.sh"

step() { printf '\n== %s\n' "$*"; }

step "sandbox up: a source and a target MariaDB on loopback ports"
"$bin" sandbox up --dir "$dir"

step "demo schema and 2000 write transactions on the source"
"$bin" sandbox workload --dir "$dir" --txns 2000

step "pitcrew catchup: stream the source's binlog into the empty target, then exit"
"$bin" catchup --config "$dir/pitcrew.yaml" --start-from beginning --timeout 5m

step "more writes, and a second catchup that resumes from the checkpoint"
"$bin" sandbox workload --dir "$dir" --txns 500
"$bin" catchup --config "$dir/pitcrew.yaml" --timeout 5m

step "pitcrew status"
"$bin" status --config "$dir/pitcrew.yaml"

step "checksum comparison of source and target"
"$bin" sandbox compare --dir "$dir"

printf '\nThe sandbox keeps running; `%s sandbox down --dir %s` (or make sandbox-down) removes it.\n' "$bin" "$dir"
