#!/usr/bin/env bash
# Runs every measurement behind scripts/BENCHMARKS.md and keeps the raw output
# in scripts/bench-out/ (not committed). Each figure in the report names the
# line of this script that produced it. Nothing here asserts a timing: the
# machine is shared, so every comparison is against a baseline of the same run.
#
#   scripts/bench.sh            # everything (about 5 minutes on 2 cores)
#   scripts/bench.sh signing    # one part: signing handshake sim simload cache confirm passthrough coldstart notify
set -euo pipefail
cd "$(dirname "$0")/.."
out=scripts/bench-out
mkdir -p "$out"
parts=${*:-"signing handshake sim simload cache confirm passthrough coldstart notify"}
scripts/ensure-deps.sh postgres
make -s build

run() { # name, then the command
  local name=$1; shift
  echo "== $name: $*" | tee "$out/$name.txt"
  "$@" 2>&1 | tee -a "$out/$name.txt"
}

for part in $parts; do
  case $part in
  signing)
    run signing go test -run '^$' -bench 'BenchmarkSignRequest|BenchmarkHandshakeClientCPU|BenchmarkSealOpen' -benchmem -count 5 ./internal/ibkr/ ./internal/seal/ ;;
  handshake)
    run handshake go test -run '^$' -bench BenchmarkHandshakeE2E -benchtime 200x -count 3 ./internal/ibkr/
    run singleflight go test -race -count 1 -run 'TestSingleFlight$' -v ./internal/broker/ ;;
  sim)
    run sim go test -run '^$' -bench BenchmarkSignedRequests -benchtime 20000x -count 3 ./internal/ibkrsim/ ;;
  simload)
    # The load tool against `ordertune sim` in its own process, over TCP.
    .bin/ordertune sim --addr 127.0.0.1:15005 --no-pacing > "$out/simload-server.log" 2>&1 &
    sim_pid=$!
    trap 'kill $sim_pid 2>/dev/null || true' EXIT
    sleep 1
    run simload go run ./scripts/simload --sim http://127.0.0.1:15005 --consumers 50 --workers 32 --duration 10s
    kill $sim_pid; wait $sim_pid 2>/dev/null || true; trap - EXIT ;;
  cache)
    run cache go test -count 1 -run TestMemoryOfWarmSessions -v ./internal/broker/
    run cache-bench go test -run '^$' -bench WarmSession -benchtime 100000x -benchmem ./internal/broker/ ;;
  confirm)
    run confirm go test -run '^$' -bench BenchmarkConfirm -benchtime 4000x -timeout 30m ./internal/trading/ ;;
  passthrough)
    run passthrough go test -run '^$' -bench 'BenchmarkPassthroughOverhead|BenchmarkCacheDo' -benchtime 3000x -count 3 ./internal/passthrough/ ;;
  coldstart)
    # From exec of `ordertune serve` to /readyz answering 200, five times, on
    # a migrated database in a throwaway cluster.
    run coldstart .bin/ordertune devdb -- bash -c '
      set -euo pipefail
      go run ./scripts/coldstart --admin-url "$ORDERTUNE_TEST_POSTGRES_URL" --db bench_coldstart --bin .bin/ordertune --runs 5
    ' ;;
  notify)
    # 1,000 events committed in one burst by eight writers, each delivered to
    # a local webhook receiver that checks its signature (internal/notify).
    run notify go test -count 1 -run 'TestBurstOfAThousandEvents$' -v ./internal/notify/ ;;
  *) echo "unknown part $part" >&2; exit 2 ;;
  esac
done
echo "raw output in $out/"
