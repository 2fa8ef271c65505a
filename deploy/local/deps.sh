#!/usr/bin/env bash
# deps.sh installs what the tests and the local stack need and this machine
# lacks: a ClickHouse server and client, and kcat. It is idempotent: it
# installs nothing that is already there, runs `apt-get update` only when
# apt knows no candidate for a package it must install, and says what it did.
#
# ClickHouse comes from Debian (clickhouse-server 18.16, the oldest server
# the project supports). An upstream ClickHouse (a single `clickhouse`
# binary) counts as present. Go is expected on the machine already.
set -euo pipefail

# have CMD: an executable CMD is in PATH (bash's command -v also names a
# non-executable file when it finds nothing better).
have() {
	local path
	path=$(command -v "$1" 2>/dev/null) && [ -x "$path" ]
}

missing=()
if ! { have clickhouse-server || [ -x /usr/sbin/clickhouse-server ] || have clickhouse || [ -n "${WAMETER_CLICKHOUSE_BIN:-}" ]; }; then
	missing+=(clickhouse-server)
fi
if ! { have clickhouse-client || have clickhouse; }; then
	missing+=(clickhouse-client)
fi
if ! { have kcat || have kafkacat; }; then
	missing+=(kcat)
fi

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: clickhouse-server, clickhouse-client and kcat already present"
	exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if ! have sudo; then
		echo "deps: need root (or sudo) to install: ${missing[*]}" >&2
		exit 1
	fi
	sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

no_candidate() {
	local pkg policy
	for pkg in "$@"; do
		# Not piped into grep -q: under pipefail, apt-cache's SIGPIPE would
		# read as "no candidate".
		policy=$(apt-cache policy "$pkg" 2>/dev/null)
		if ! grep -q 'Candidate: [^(]' <<<"$policy"; then
			return 0
		fi
	done
	return 1
}
if no_candidate "${missing[@]}"; then
	echo "deps: apt-get update (no install candidate yet for some of: ${missing[*]})"
	"${sudo[@]}" apt-get update -qq
fi

# The clickhouse-server package starts a system-wide server on 9000/8123
# from its postinst. The tests and the local stack run their own servers, so
# keep the package from starting one: a policy-rc.d for the time of the
# install, unless the machine already has one.
policy=/usr/sbin/policy-rc.d
added_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
	"${sudo[@]}" chmod 755 "$policy"
	added_policy=1
fi
cleanup() { if [ -n "$added_policy" ]; then "${sudo[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

echo "deps: apt-get install ${missing[*]}"
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed ${missing[*]}"
