#!/usr/bin/env bash
# down.sh stops what up.sh started for this WAMETER_STATE_DIR, by pid, and
# nothing else: SIGTERM, then SIGKILL after 30 s. Data stays in the state
# dir for the next up.sh. Settings: see env.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

stop() {
	local name=$1 pid
	if ! pid=$(ours "$name"); then
		rm -f "$WAMETER_STATE_DIR/$name.pid"
		log "$name: not running from $WAMETER_STATE_DIR"
		return
	fi
	kill -TERM "$pid"
	local deadline=$((SECONDS + 30))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			log "$name (pid $pid) still running after 30s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.1
	done
	rm -f "$WAMETER_STATE_DIR/$name.pid"
	log "$name stopped (pid $pid)"
}

# Reverse order of up.sh.
stop gateway
stop wameter
stop clickhouse
stop broker
