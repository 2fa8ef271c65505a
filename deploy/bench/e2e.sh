#!/usr/bin/env bash
# e2e.sh is the end-to-end part of `make bench`: throughput and footprint of
# the whole pipeline on this machine, against "the floor" (the same records
# moved from Kafka into a ClickHouse table with no logic).
#
# It runs its own stack (deploy/local/up.sh and down.sh) on its own ports and
# state dir, so it runs beside a `make up` stack, and stops it at exit:
#
#  1. simulates BENCH_RECORDS webhook and send records (a PMP day) to a file;
#  2. starts broker, ClickHouse and the pipeline (up.sh: topics, schemas in a
#     fresh database), stops the pipeline, produces the records;
#  3. pipeline run: starts the pipeline again on the backlog and measures from
#     the first record it consumed to the last row visible in ClickHouse
#     (conversations + charges, unchanged for BENCH_SETTLE), sampling RSS
#     (and, with BENCH_PROFILE=1, taking back-to-back CPU profiles); then
#     the window's changelog size;
#  4. the floor: kcat | clickhouse-client INSERT of the same records;
#  5. prints one table (also written to BENCH_STATE_DIR/run/summary.txt).
#
# The replay is compressed (a day in seconds) and runs with the default
# WAMETER_LATENESS (10m): the window's watermark follows the slowest input
# partition (normalize's source marks), so a replay that reads some input
# partitions ahead of others makes nothing late, and the window releases
# while the input streams in. After the last record, the last lateness of
# event time waits for WAMETER_IDLE_FLUSH=5s (BENCH_IDLE_FLUSH): input
# partitions quiet at their end for that long are marked idle and the
# window releases the rest.
#
# Settings (environment):
#   BENCH_RECORDS        records to simulate, about (default 5000000: a day of
#                        about 900k customers, long enough that the throughput
#                        is sustained; with 1000000 the 5 s idle wait at the
#                        end is more than half of the run)
#   BENCH_ACCOUNTS       WhatsApp Business Accounts (default 10); customers
#                        per account are chosen to reach BENCH_RECORDS
#   BENCH_SEED           simulator seed (default 1)
#   BENCH_STATE_DIR      stack data, logs, records, profiles (default .state/bench)
#   BENCH_KAFKA_ADDR     broker address (default 127.0.0.1:19092)
#   BENCH_CLICKHOUSE_ADDR  ClickHouse native address (default 127.0.0.1:19000;
#                        HTTP on the native port minus 877)
#   BENCH_OPS_ADDR       the pipeline's ops address (default 127.0.0.1:19464)
#   BENCH_SETTLE         seconds the row count must stay unchanged (default 15)
#   BENCH_TIMEOUT        seconds the pipeline run may take (default 1800)
#   BENCH_PROFILE        1: CPU profiles of the pipeline run, and their top
#                        functions after the table (default 0: on this
#                        machine profiling costs the pipeline 10-14% of its
#                        CPU time, which would understate the ratio)
#   BENCH_FLOOR_RUNS     floor runs, the median is the floor (default 3; 0:
#                        no floor and no ratio, to compare pipeline runs)
#   BENCH_LATENESS       WAMETER_LATENESS of the pipeline run (default: the
#                        pipeline's default, 10m)
#   BENCH_IDLE_FLUSH     WAMETER_IDLE_FLUSH of the pipeline run, seconds
#                        (default 5). Input partitions are marked idle only
#                        once read to their end, so in this backfill it only
#                        sets how long the pipeline waits after the end of
#                        its input; it is printed with the results.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo_root"

records_wanted=${BENCH_RECORDS:-5000000}
accounts=${BENCH_ACCOUNTS:-10}
seed=${BENCH_SEED:-1}
settle=${BENCH_SETTLE:-15}
timeout_s=${BENCH_TIMEOUT:-1800}
profile=${BENCH_PROFILE:-0}
floor_count=${BENCH_FLOOR_RUNS:-3}

# The stack's settings come only from BENCH_*: a developer's KAFKA_BROKERS or
# WAMETER_STATE_DIR (their `make up` stack) must not be picked up.
export WAMETER_STATE_DIR=${BENCH_STATE_DIR:-$repo_root/.state/bench}
export KAFKA_BROKERS=${BENCH_KAFKA_ADDR:-127.0.0.1:19092}
export CLICKHOUSE_ADDR=${BENCH_CLICKHOUSE_ADDR:-127.0.0.1:19000}
export WAMETER_OPS_ADDR=${BENCH_OPS_ADDR:-127.0.0.1:19464}
export CLICKHOUSE_DATABASE=bench_$(date -u +%Y%m%d_%H%M%S)
idle_flush=${BENCH_IDLE_FLUSH:-5}
export WAMETER_IDLE_FLUSH=${idle_flush}s
if [ -n "${BENCH_LATENESS:-}" ]; then export WAMETER_LATENESS=$BENCH_LATENESS; else unset WAMETER_LATENESS; fi
unset CLICKHOUSE_HTTP_PORT
# shellcheck source=../local/env.sh
source "$repo_root/deploy/local/env.sh"

run_dir=$WAMETER_STATE_DIR/run
records_file=$run_dir/records.jsonl
wameter=$repo_root/bin/wameter

bench_log() { echo "bench: $*" >&2; }
now() { echo "$EPOCHREALTIME"; }
# elapsed FROM TO: seconds between two now() values, 3 decimals.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# per_second COUNT SECONDS
per_second() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "n/a" }'; }
ch() { clickhouse-client --host "$clickhouse_host" --port "$clickhouse_port" "$@"; }
# ch_http QUERY: a query over HTTP (curl is much cheaper than starting
# clickhouse-client every poll).
ch_http() { curl -sf -m 5 "http://$clickhouse_host:$CLICKHOUSE_HTTP_PORT/" --data-binary "$1"; }
# metric_sum NAME [LABEL]: the sum over all label sets of NAME (those that
# contain LABEL, e.g. outcome="late") in the pipeline's /metrics (0 when the
# pipeline does not answer yet: not an error, pipefail notwithstanding).
metric_sum() {
	{ curl -sf -m 5 "http://$WAMETER_OPS_ADDR/metrics" 2>/dev/null || true; } |
		awk -v name="$1" -v label="${2:-}" '($1 == name || index($1, name "{") == 1) && (label == "" || index($1, label)) { s += $2 } END { printf "%.0f", s }'
}
# rss KIND PID: VmHWM or VmRSS of PID in kB (0 when gone).
rss() { awk -v k="$1:" '$1 == k { print $2; found = 1 } END { if (!found) print 0 }' "/proc/$2/status" 2>/dev/null || echo 0; }
# cpu_ticks PID: user + system CPU time of PID in clock ticks.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
mb() { awk -v kb="$1" 'BEGIN { printf "%.0f", kb / 1024 }'; }

profile_pid=
cleanup() {
	local status=$?
	if [ -n "$profile_pid" ]; then kill "$profile_pid" 2>/dev/null || true; fi
	bash "$repo_root/deploy/local/down.sh" >&2 || true
	if ((status != 0)); then
		bench_log "FAILED (exit $status); logs under $WAMETER_STATE_DIR"
	fi
}

# --- preparation -------------------------------------------------------------

bash "$repo_root/deploy/local/deps.sh" >&2
for tool in kcat clickhouse-client curl; do
	command -v "$tool" >/dev/null || die "$tool not found"
done
bench_log "building bin/"
go build -o bin/ ./services/...

# A stack left over by an interrupted run of ours goes down; anything else
# on our ports is not ours to use: the numbers would be wrong.
if ours broker >/dev/null || ours clickhouse >/dev/null || ours wameter >/dev/null; then
	bash "$repo_root/deploy/local/down.sh" >&2
fi
for addr in "$KAFKA_BROKERS" "$CLICKHOUSE_ADDR" "$clickhouse_host:$CLICKHOUSE_HTTP_PORT" "$WAMETER_OPS_ADDR"; do
	if answers "${addr%:*}" "${addr##*:}"; then
		die "$addr is taken by something else; choose other BENCH_* addresses"
	fi
done
trap cleanup EXIT
# A fresh broker and ClickHouse: topics must hold exactly this run's records.
rm -rf "$WAMETER_STATE_DIR/broker" "$WAMETER_STATE_DIR/clickhouse" "$run_dir"
rm -f "$WAMETER_STATE_DIR"/{broker,clickhouse,wameter}.log
mkdir -p "$run_dir"

# --- 1. records ----------------------------------------------------------------

# A simulated PMP-day customer yields about 5.5 records (webhooks and sends).
customers=$(((records_wanted * 2 / 11 + accounts - 1) / accounts))
bench_log "simulating a PMP day: $accounts accounts x $customers customers"
"$wameter" simulate -start 2025-08-04T00:00:00Z -duration 24h -accounts "$accounts" \
	-customers "$customers" -seed "$seed" -out "$records_file"
records=$(wc -l <"$records_file")

# --- 2. stack and input --------------------------------------------------------

bench_log "starting the stack in $WAMETER_STATE_DIR (database $CLICKHOUSE_DATABASE)"
bash "$repo_root/deploy/local/up.sh" >&2
broker_pid=$(ours broker) || die "broker not started by up.sh"
clickhouse_pid=$(ours clickhouse) || die "clickhouse not started by up.sh"
# up.sh's pipeline created the topics and applied the schemas. Stop it: the
# pipeline run starts on the whole backlog, so producing is not measured.
pid=$(ours wameter) || die "pipeline not started by up.sh"
kill -TERM "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done

bench_log "producing $records records"
produce_start=$(now)
timeout "$timeout_s" "$wameter" produce "$records_file" >&2
produce_s=$(elapsed "$produce_start" "$(now)")

# --- 3. pipeline run -----------------------------------------------------------

bench_log "pipeline run: starting wameter all-in-one on the backlog"
# up.sh returns once /readyz answers, by when the pipeline may be consuming:
# poll from the launch on, so the first poll that sees a record is close to
# the first record (the table shows how many that poll saw).
launch_t=$(now)
bash "$repo_root/deploy/local/up.sh" >&2 &
up_pid=$!

if [ "$profile" = 1 ]; then
	# Back-to-back 10 s CPU profiles until the run settles, merged at the end:
	# one profile of the whole run, whatever its length.
	(
		i=0
		while [ ! -e "$run_dir/settled" ]; do
			if curl -sf -m 30 -o "$run_dir/cpu.$i.prof" "http://$WAMETER_OPS_ADDR/debug/pprof/profile?seconds=10" 2>/dev/null; then
				i=$((i + 1))
			else
				rm -f "$run_dir/cpu.$i.prof"
				sleep 0.05 # the ops server is not up yet
			fi
		done
	) &
	profile_pid=$!
fi

rows_query="SELECT (SELECT count() FROM $CLICKHOUSE_DATABASE.charges) + (SELECT count() FROM $CLICKHOUSE_DATABASE.conversations)"
first_t= all_in_t= last_row_t= rows=0 consumed=0 first_seen=0 wameter_pid=
max_rss_broker=0 max_rss_clickhouse=0 max_rss_wameter=0
deadline=$((SECONDS + timeout_s))
while :; do
	if [ -z "$wameter_pid" ]; then
		if ! wameter_pid=$(ours wameter); then
			wameter_pid=
			kill -0 "$up_pid" 2>/dev/null || die "up.sh did not start the pipeline"
			((SECONDS < deadline)) || die "the pipeline did not start"
			sleep 0.02
			continue
		fi
	fi
	t=$(now)
	consumed=$(metric_sum wameter_normalize_records_total)
	if [ -z "$first_t" ] && ((consumed > 0)); then
		first_t=$t first_seen=$consumed
		for p in broker clickhouse wameter; do
			pid_var=${p}_pid
			printf -v "cpu0_$p" %s "$(cpu_ticks "${!pid_var}")"
		done
	fi
	if [ -z "$all_in_t" ] && ((consumed >= records)); then all_in_t=$t; fi
	n=$(ch_http "$rows_query" || echo "$rows")
	if ((n != rows)); then
		rows=$n
		last_row_t=$t
	fi
	for p in broker clickhouse wameter; do
		pid_var=${p}_pid max_var=max_rss_$p
		r=$(rss VmRSS "${!pid_var}")
		if ((r > ${!max_var})); then printf -v "$max_var" %s "$r"; fi
	done
	if [ -n "$all_in_t" ] && ((rows > 0)) &&
		awk -v a="$last_row_t" -v b="$t" -v s="$settle" 'BEGIN { exit !(b - a >= s) }'; then
		break
	fi
	kill -0 "$wameter_pid" 2>/dev/null || die "the pipeline exited; see $WAMETER_STATE_DIR/wameter.log"
	((SECONDS < deadline)) || die "pipeline run not settled after ${timeout_s}s (consumed $consumed of $records, $rows rows)"
	if [ -z "$first_t" ]; then sleep 0.02; else sleep 0.25; fi
done
touch "$run_dir/settled"
wait "$up_pid" || die "up.sh failed"
hwm_broker=$(rss VmHWM "$broker_pid")
hwm_clickhouse=$(rss VmHWM "$clickhouse_pid")
hwm_wameter=$(rss VmHWM "$wameter_pid")
for p in broker clickhouse wameter; do
	pid_var=${p}_pid cpu0_var=cpu0_$p
	printf -v "cpu_$p" %s "$(awk -v a="${!cpu0_var}" -v b="$(cpu_ticks "${!pid_var}")" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (b - a) / hz }')"
done

events=$(metric_sum wameter_normalize_events_total)
sink_rows=$(metric_sum wameter_sink_rows_inserted_total)
charges=$(ch_http "SELECT count() FROM $CLICKHOUSE_DATABASE.charges")
conversations=$(ch_http "SELECT count() FROM $CLICKHOUSE_DATABASE.conversations")
dead_letters=$(metric_sum wameter_stream_dead_letters_total)
late=$(metric_sum wameter_window_events_total 'outcome="late"')
state_keys=$(metric_sum wameter_window_state_keys)
# A forced GC first: the heap then holds what is live (state, buffers, pools).
curl -sf -m 30 -o /dev/null "http://$WAMETER_OPS_ADDR/debug/pprof/heap?gc=1"
heap_live=$(metric_sum go_memstats_heap_alloc_bytes)
changelog=$(go run ./deploy/bench/statebytes -broker "$KAFKA_BROKERS" -topic "${WAMETER_WINDOW_STATE_TOPIC:-wameter.window-state}")
changelog_keys=$(sed -E 's/.*keys=([0-9]+).*/\1/' <<<"$changelog")
changelog_bytes=$(sed -E 's/.*bytes=([0-9]+).*/\1/' <<<"$changelog")

startup_s=$(elapsed "$launch_t" "$first_t")
wall_s=$(elapsed "$first_t" "$last_row_t")
ingest_s=$(elapsed "$first_t" "$all_in_t")
tail_s=$(elapsed "$all_in_t" "$last_row_t")

if [ -n "$profile_pid" ]; then
	wait "$profile_pid" || true
	profile_pid=
fi
# The floor runs without the pipeline beside it.
kill -TERM "$wameter_pid"
while kill -0 "$wameter_pid" 2>/dev/null; do sleep 0.1; done

# --- 4. the floor --------------------------------------------------------------

# The floor: the same records from Kafka into a ClickHouse table with no
# logic. ClickHouse 18.16 has no JSONAsString, LineAsString or TSVRaw input, and
# TabSeparated would unescape the backslashes in the JSON. CSV with a
# delimiter absent from the records (\x01) stores each line byte for byte:
# a field that does not start with a quote is read raw up to the delimiter
# or the end of the line.
# floor_once N: moves the records into a new table floor_raw_N; prints the
# seconds it took, from the start until both INSERTs returned (the rows are
# visible then; the count that checks them is not timed).
floor_once() {
	local table=$CLICKHOUSE_DATABASE.floor_raw_$1 start end topic pids=() p n
	ch --query "CREATE TABLE $table (raw String) ENGINE = MergeTree ORDER BY tuple()"
	start=$(now)
	for topic in "${WAMETER_WEBHOOKS_TOPIC:-whatsapp.webhooks}" "${WAMETER_SENDS_TOPIC:-whatsapp.sends}"; do
		timeout "$timeout_s" bash -c 'set -o pipefail
			kcat -b "$1" -C -t "$2" -e -q -f "%s\n" |
				clickhouse-client --host "$3" --port "$4" --format_csv_delimiter="$6" --query "INSERT INTO $5 FORMAT CSV"' \
			_ "$KAFKA_BROKERS" "$topic" "$clickhouse_host" "$clickhouse_port" "$table" $'\x01' &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || die "floor: kcat | clickhouse-client failed"; done
	# An INSERT returns once its parts are committed: every row is visible
	# now. The count checks that, outside the time (on 18.16 it reads the
	# whole column: seconds for gigabytes, more than the poll's 5 s limit).
	end=$(now)
	n=$(ch --query "SELECT count() FROM $table")
	((n == records)) || die "floor: $n rows in $table, want $records"
	elapsed "$start" "$end"
}
# The floor is short: the median of BENCH_FLOOR_RUNS runs.
floor_runs=()
for ((i = 1; i <= floor_count; i++)); do
	bench_log "floor run $i: kcat | clickhouse-client INSERT of the same records"
	floor_runs+=("$(floor_once "$i")")
done
floor_s=0
if ((floor_count > 0)); then
	floor_s=$(printf '%s\n' "${floor_runs[@]}" | sort -n | sed -n "$(((floor_count + 1) / 2))p")
fi

# --- 5. summary ----------------------------------------------------------------

pipeline_rps=$(per_second "$records" "$wall_s")
floor_rps=$(per_second "$records" "$floor_s")
{
	printf 'wameter end-to-end bench: %s, %s cores, %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)" "$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
	printf '%-44s %s\n' \
		"records (webhooks + sends, PMP day)" "$records ($accounts accounts x $customers customers)" \
		"events (normalized)" "$events" \
		"rows in ClickHouse (charges + conversations)" "$rows ($charges + $conversations; sink inserted $sink_rows; dead letters $dead_letters)" \
		"lateness; events dead-lettered as late" "${WAMETER_LATENESS:-10m (default)}; $late" \
		"produce time (not pipeline time)" "${produce_s}s" \
		"pipeline start-up (launch to first record)" "${startup_s}s (the first poll that saw records saw $first_seen)" \
		"pipeline wall (first record to last row)" "${wall_s}s" \
		"  of which: consuming the input" "${ingest_s}s" \
		"  of which: last record in to last row" "${tail_s}s (input partitions idle after ${idle_flush}s, then the last ${WAMETER_LATENESS:-10m} of event time released)" \
		"pipeline events/s" "$(per_second "$events" "$wall_s")" \
		"pipeline records/s" "$pipeline_rps" \
		"pipeline events/s less the ${idle_flush}s idle-flush wait" "$(per_second "$events" "$(awk -v w="$wall_s" -v i="$idle_flush" 'BEGIN { print w - i }')")" \
		"floor wall (kcat | clickhouse-client)" "$(if ((floor_count > 0)); then echo "${floor_s}s (median of ${floor_runs[*]})"; else echo "not run (BENCH_FLOOR_RUNS=0)"; fi)" \
		"floor records/s" "$floor_rps" \
		"RATIO pipeline/floor (records/s)" "$(awk -v a="$pipeline_rps" -v b="$floor_rps" 'BEGIN { if (b + 0 > 0) printf "%.3f (floor %.1fx faster)", a / b, b / a; else print "n/a (BENCH_FLOOR_RUNS=0)" }')" \
		"  the same less the ${idle_flush}s idle-flush wait" "$(awk -v n="$records" -v w="$wall_s" -v b="$floor_rps" -v i="$idle_flush" 'BEGIN { if (b + 0 > 0) printf "%.3f (not the headline: the wait is the replay'"'"'s, see the top of e2e.sh)", n / (w - i) / b; else print "n/a" }')" \
		"CPU seconds in the run: wameter, broker, clickhouse" "$cpu_wameter, $cpu_broker, $cpu_clickhouse (first record to settled, incl. ${settle}s settle)" \
		"CPU profiling of the pipeline run" "$(if [ "$profile" = 1 ]; then echo "on (it slows the pipeline: compare runs without it)"; else echo "off (BENCH_PROFILE=1)"; fi)" \
		"peak RSS wameter (VmHWM)" "$(mb "$hwm_wameter") MB" \
		"peak RSS broker (VmHWM; sampled in run)" "$(mb "$hwm_broker") MB; $(mb "$max_rss_broker") MB" \
		"peak RSS clickhouse (VmHWM; sampled in run)" "$(mb "$hwm_clickhouse") MB; $(mb "$max_rss_clickhouse") MB" \
		"window state keys (wameter_window_state_keys)" "$state_keys" \
		"changelog bytes per key (latest per key)" "$(awk -v b="$changelog_bytes" -v k="$changelog_keys" 'BEGIN { printf "%.0f B (%d B / %d keys)", b / k, b, k }')" \
		"changelog bytes per simulated customer" "$(awk -v b="$changelog_bytes" -v c="$((accounts * customers))" 'BEGIN { printf "%.0f B", b / c }')" \
		"Go heap live after GC per state key" "$(awk -v h="$heap_live" -v k="$state_keys" 'BEGIN { printf "%.0f B (%.0f MB / %d; an upper bound: buffers, pools, caches too)", h / k, h / 1048576, k }')"
} | tee "$run_dir/summary.txt"

if [ "$profile" = 1 ] && compgen -G "$run_dir/cpu.*.prof" >/dev/null; then
	echo
	echo "CPU profile of wameter all-in-one over the pipeline run ($run_dir/cpu.*.prof):"
	go tool pprof -top -nodecount=15 "$wameter" "$run_dir"/cpu.*.prof 2>/dev/null | tee "$run_dir/cpu-top.txt"
fi
