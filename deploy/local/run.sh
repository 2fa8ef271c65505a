#!/usr/bin/env bash
# run.sh is `make run`: with the stack up (make up), it feeds a simulated
# day of WhatsApp traffic for a few accounts in each pricing era (a CBP day
# in 2024, then a PMP day in 2025), waits until the charges settle, and
# prints the spend summary read back from ClickHouse.
#
# The days are replayed in seconds, far faster than real time, so make run
# starts the stack with WAMETER_LATENESS=48h (a backfill setting; the
# contract's default is 10m). Settings: see env.sh; RUN_SEED, RUN_CUSTOMERS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

bin=$repo_root/bin/wameter
seed=${RUN_SEED:-1}
customers=${RUN_CUSTOMERS:-500}
idle=${WAMETER_IDLE_FLUSH:-30s}
mkdir -p "$WAMETER_STATE_DIR/run"

for start in 2024-03-04T00:00:00Z 2025-08-04T00:00:00Z; do
	file=$WAMETER_STATE_DIR/run/day-${start%%T*}.jsonl
	log "simulating a day from $start: 3 accounts x $customers customers -> $file"
	"$bin" simulate -start "$start" -duration 24h -accounts 3 -customers "$customers" -seed "$seed" -malformed 5 -out "$file"
	"$bin" produce "$file"
	log "waiting for the charges to settle (idle flush $idle)"
	"$bin" summary -wait "${RUN_SETTLE:-20s}" >/dev/null
done
echo
"$bin" summary
echo
log "dead letters (malformed input, late events): kcat -b ${KAFKA_BROKERS%%,*} -C -t ${WAMETER_DLQ_TOPIC:-whatsapp.dlq} -e -f '%h\n'"
