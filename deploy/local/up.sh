#!/usr/bin/env bash
# up.sh brings up the local stack's dependencies and waits until they serve:
#
#   - the broker (./bin/broker, built if missing) on KAFKA_BROKERS' first
#     address, unless something answers there already;
#   - a ClickHouse server on CLICKHOUSE_ADDR (HTTP on CLICKHOUSE_HTTP_PORT),
#     unless something answers there already; deps.sh installs it first if
#     needed.
#
# What it starts keeps its pid, log and data under WAMETER_STATE_DIR, and
# down.sh stops exactly that. Settings: see env.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

mkdir -p "$WAMETER_STATE_DIR"

# wait_until SECONDS NAME PID CMD...: runs CMD until it succeeds, failing
# early if PID exits.
wait_until() {
	local seconds=$1 name=$2 pid=$3
	shift 3
	local deadline=$((SECONDS + seconds))
	until "$@" >/dev/null 2>&1; do
		if ! kill -0 "$pid" 2>/dev/null; then
			die "$name exited while starting; see its log above"
		fi
		if ((SECONDS >= deadline)); then
			die "$name not ready after ${seconds}s"
		fi
		sleep 0.1
	done
}

# launch NAME DIR CMD...: starts CMD in DIR in a session of its own (so it
# outlives this script and the terminal), output appended to NAME.log, and
# sets launched_pid to its pid, also recorded in NAME.pid. The process writes
# its own pid before it execs CMD: setsid may fork, so $! would not be it.
launch() {
	local name=$1 dir=$2
	shift 2
	local pidfile=$WAMETER_STATE_DIR/$name.pid
	rm -f "$pidfile"
	(cd "$dir" && exec setsid nohup bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "$@") \
		</dev/null >>"$WAMETER_STATE_DIR/$name.log" 2>&1 &
	local deadline=$((SECONDS + 10))
	until [ -s "$pidfile" ]; do
		((SECONDS < deadline)) || die "$name did not start; see $WAMETER_STATE_DIR/$name.log"
		sleep 0.05
	done
	launched_pid=$(cat "$pidfile")
}

start_broker() {
	if pid=$(ours broker); then
		log "broker already running (pid $pid) on $broker_addr"
		return
	fi
	if answers "$broker_host" "$broker_port"; then
		log "broker: something already answers on $broker_addr; using it"
		return
	fi
	local bin=$repo_root/bin/broker
	if [ ! -x "$bin" ]; then
		log "building $bin"
		(cd "$repo_root" && go build -o bin/broker ./services/broker)
	fi
	local dir=$WAMETER_STATE_DIR/broker
	mkdir -p "$dir"
	rm -f "$dir/addr"
	launch broker "$repo_root" "$bin" -addr "$broker_addr" -data-dir "$dir/data" -addr-file "$dir/addr"
	local pid=$launched_pid
	if ! wait_until 30 broker "$pid" test -s "$dir/addr"; then
		tail -20 "$WAMETER_STATE_DIR/broker.log" >&2
		exit 1
	fi
	log "broker serving on $broker_addr (pid $pid, log $WAMETER_STATE_DIR/broker.log)"
}

clickhouse_cmd() {
	local c
	for c in "${WAMETER_CLICKHOUSE_BIN:-}" clickhouse-server /usr/sbin/clickhouse-server clickhouse; do
		[ -n "$c" ] || continue
		if c=$(command -v "$c"); then
			if [ "$(basename "$c")" = clickhouse ]; then
				echo "$c server"
			else
				echo "$c"
			fi
			return
		fi
	done
	return 1
}

# write_clickhouse_config DIR: the same lean config as pkg/testenv's.
write_clickhouse_config() {
	local dir=$1
	mkdir -p "$dir"/{data,tmp,user_files,format_schemas,log}
	cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>$dir/log/server.log</log>
        <errorlog>$dir/log/server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>$clickhouse_host</listen_host>
    <tcp_port>$clickhouse_port</tcp_port>
    <http_port>$CLICKHOUSE_HTTP_PORT</http_port>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_server_memory_usage>8589934592</max_server_memory_usage>
    <max_concurrent_queries>64</max_concurrent_queries>
    <mlock_executable>false</mlock_executable>
</yandex>
XML
	cat >"$dir/users.xml" <<'XML'
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default></default>
    </quotas>
</yandex>
XML
}

clickhouse_ping() {
	local reply
	exec 3<>"/dev/tcp/$clickhouse_host/$CLICKHOUSE_HTTP_PORT" || return 1
	printf 'GET /ping HTTP/1.0\r\n\r\n' >&3
	reply=$(timeout 2 cat <&3)
	exec 3<&-
	[[ $reply == *Ok.* ]]
}

start_clickhouse() {
	if pid=$(ours clickhouse); then
		log "clickhouse already running (pid $pid) on $CLICKHOUSE_ADDR"
		return
	fi
	if answers "$clickhouse_host" "$clickhouse_port"; then
		log "clickhouse: something already answers on $CLICKHOUSE_ADDR; using it"
		return
	fi
	if ((CLICKHOUSE_HTTP_PORT < 1024)); then
		die "CLICKHOUSE_HTTP_PORT $CLICKHOUSE_HTTP_PORT: set it explicitly for native port $clickhouse_port"
	fi
	if answers "$clickhouse_host" "$CLICKHOUSE_HTTP_PORT"; then
		die "clickhouse: HTTP port $CLICKHOUSE_HTTP_PORT is taken; set CLICKHOUSE_HTTP_PORT"
	fi
	local cmd
	if ! cmd=$(clickhouse_cmd); then
		bash "$repo_root/deploy/local/deps.sh"
		cmd=$(clickhouse_cmd) || die "no ClickHouse server binary even after deps.sh"
	fi
	local dir=$WAMETER_STATE_DIR/clickhouse
	write_clickhouse_config "$dir"
	# shellcheck disable=SC2086 # cmd may be "clickhouse server"
	launch clickhouse "$dir" $cmd --config-file="$dir/config.xml"
	local pid=$launched_pid
	if ! wait_until 60 clickhouse "$pid" clickhouse_ping; then
		tail -20 "$dir/log/server.err.log" >&2 || true
		exit 1
	fi
	log "clickhouse serving on $CLICKHOUSE_ADDR, http $clickhouse_host:$CLICKHOUSE_HTTP_PORT (pid $pid, logs $dir/log/)"
}

# ops_ready: the pipeline's /readyz answers 200.
ops_ready() {
	local host=${WAMETER_OPS_ADDR%:*} port=${WAMETER_OPS_ADDR##*:} reply
	exec 4<>"/dev/tcp/$host/$port" || return 1
	printf 'GET /readyz HTTP/1.0\r\n\r\n' >&4
	reply=$(timeout 2 cat <&4)
	exec 4<&-
	[[ $reply == "HTTP/1."?" 200"* ]]
}

start_pipeline() {
	if pid=$(ours wameter); then
		log "pipeline already running (pid $pid)"
		return
	fi
	if answers "${WAMETER_OPS_ADDR%:*}" "${WAMETER_OPS_ADDR##*:}"; then
		die "WAMETER_OPS_ADDR $WAMETER_OPS_ADDR is taken (another stack?); set WAMETER_OPS_ADDR"
	fi
	local bin=$repo_root/bin/wameter
	if [ ! -x "$bin" ]; then
		log "building $bin"
		(cd "$repo_root" && go build -o bin/wameter ./services/wameter)
	fi
	# The pipeline applies the schemas to CLICKHOUSE_DATABASE, creates its
	# topics, and runs every stage in one process.
	launch wameter "$repo_root" "$bin" all-in-one -pidfile "$WAMETER_STATE_DIR/wameter.pid"
	local pid=$launched_pid
	if ! wait_until 120 pipeline "$pid" ops_ready; then
		tail -20 "$WAMETER_STATE_DIR/wameter.log" >&2
		exit 1
	fi
	log "pipeline running (pid $pid, ops http://$WAMETER_OPS_ADDR/metrics, log $WAMETER_STATE_DIR/wameter.log)"
}

# readyz HOST:PORT: the ops server there answers /readyz with 200.
readyz() {
	local host=${1%:*} port=${1##*:} reply
	exec 5<>"/dev/tcp/$host/$port" || return 1
	printf 'GET /readyz HTTP/1.0\r\n\r\n' >&5
	reply=$(timeout 2 cat <&5)
	exec 5<&-
	[[ $reply == "HTTP/1."?" 200"* ]]
}

# start_gateway runs `wameter gateway` (Meta's webhook endpoint, writing to
# the webhooks topic) on WAMETER_GATEWAY_ADDR (default 127.0.0.1:8080) with
# its ops server on WAMETER_GATEWAY_OPS_ADDR (default 127.0.0.1:9466), only
# when an app secret is given: without one it cannot check signatures.
start_gateway() {
	if [ -z "${WHATSAPP_APP_SECRET:-}" ] && [ -z "${WHATSAPP_APP_SECRET_FILE:-}" ]; then
		log "gateway not started: set WHATSAPP_APP_SECRET (or _FILE) and WHATSAPP_VERIFY_TOKEN to receive Meta's webhooks"
		return
	fi
	if pid=$(ours gateway); then
		log "gateway already running (pid $pid)"
		return
	fi
	local addr=${WAMETER_GATEWAY_ADDR:-127.0.0.1:8080} ops=${WAMETER_GATEWAY_OPS_ADDR:-127.0.0.1:9466}
	if answers "${addr%:*}" "${addr##*:}"; then
		die "WAMETER_GATEWAY_ADDR $addr is taken; set WAMETER_GATEWAY_ADDR"
	fi
	if answers "${ops%:*}" "${ops##*:}"; then
		die "WAMETER_GATEWAY_OPS_ADDR $ops is taken; set WAMETER_GATEWAY_OPS_ADDR"
	fi
	local bin=$repo_root/bin/wameter
	if ! "$bin" help 2>&1 | grep -q '^  gateway '; then
		log "building $bin (with the gateway command)"
		(cd "$repo_root" && go build -o bin/wameter ./services/wameter)
	fi
	launch gateway "$repo_root" env WAMETER_GATEWAY_ADDR="$addr" WAMETER_OPS_ADDR="$ops" \
		"$bin" gateway -pidfile "$WAMETER_STATE_DIR/gateway.pid"
	local pid=$launched_pid
	if ! wait_until 60 gateway "$pid" readyz "$ops"; then
		tail -20 "$WAMETER_STATE_DIR/gateway.log" >&2
		exit 1
	fi
	log "gateway receiving webhooks on http://$addr${WAMETER_GATEWAY_PATH:-/webhook} (pid $pid, ops http://$ops/metrics, log $WAMETER_STATE_DIR/gateway.log)"
}

start_broker
start_clickhouse
start_pipeline
start_gateway

log "KAFKA_BROKERS=$KAFKA_BROKERS CLICKHOUSE_ADDR=$CLICKHOUSE_ADDR CLICKHOUSE_DATABASE=$CLICKHOUSE_DATABASE WAMETER_STATE_DIR=$WAMETER_STATE_DIR"
