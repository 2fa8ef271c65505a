# env.sh is sourced by up.sh and down.sh: the stack's settings and helpers.
#
#   KAFKA_BROKERS         broker addresses; the first is the one up.sh serves
#                         (default 127.0.0.1:9092)
#   CLICKHOUSE_ADDR       ClickHouse native address (default 127.0.0.1:9000)
#   CLICKHOUSE_HTTP_PORT  ClickHouse HTTP port of a server up.sh starts;
#                         default: the native port minus 877, so 9000 -> 8123
#                         and 19000 -> 18123
#   CLICKHOUSE_DATABASE   the pipeline's database (default wameter)
#   WAMETER_STATE_DIR     pids, logs and data of what up.sh starts
#                         (default ./.state, relative to the repo root)
#   WAMETER_OPS_ADDR      the pipeline's ops server (default 127.0.0.1:9464);
#                         every other WAMETER_* variable reaches the pipeline
#
# Stacks with different addresses and state dirs run side by side.

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
CLICKHOUSE_ADDR=${CLICKHOUSE_ADDR:-127.0.0.1:9000}
CLICKHOUSE_DATABASE=${CLICKHOUSE_DATABASE:-wameter}
WAMETER_STATE_DIR=${WAMETER_STATE_DIR:-$repo_root/.state}
case $WAMETER_STATE_DIR in
/*) ;;
*) WAMETER_STATE_DIR=$repo_root/$WAMETER_STATE_DIR ;;
esac
WAMETER_OPS_ADDR=${WAMETER_OPS_ADDR:-127.0.0.1:9464}
export KAFKA_BROKERS CLICKHOUSE_ADDR CLICKHOUSE_DATABASE WAMETER_STATE_DIR WAMETER_OPS_ADDR

broker_addr=${KAFKA_BROKERS%%,*}
broker_host=${broker_addr%:*}
broker_port=${broker_addr##*:}
clickhouse_host=${CLICKHOUSE_ADDR%:*}
clickhouse_port=${CLICKHOUSE_ADDR##*:}
CLICKHOUSE_HTTP_PORT=${CLICKHOUSE_HTTP_PORT:-$((clickhouse_port - 877))}

log() { echo "wameter-local: $*"; }
die() {
	echo "wameter-local: $*" >&2
	exit 1
}

# answers HOST PORT: something accepts TCP connections there.
answers() {
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# ours NAME: the pid in NAME.pid runs, and its command line names our state
# dir (so a recycled pid is never mistaken for ours). Prints the pid.
ours() {
	local pidfile=$WAMETER_STATE_DIR/$1.pid pid
	[ -f "$pidfile" ] || return 1
	pid=$(cat "$pidfile")
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$WAMETER_STATE_DIR/" || return 1
	echo "$pid"
}
