#!/usr/bin/env bash
# Runs every measurement behind scripts/BENCHMARKS.md and keeps the raw output
# in scripts/bench-out/ (not committed). Each figure in the report names the
# line of this script that produced it. Nothing here asserts a timing: the
# machine is shared, so every comparison is against a baseline of the same run.
#
#   scripts/bench.sh            # everything (about 5 minutes on 2 cores)
#   scripts/bench.sh signing    # one part: signing handshake sim simload cache confirm passthrough coldstart notify storm
#   scripts/bench.sh storm      # the market-open storm (issue 22), not part of "everything": about
#                               # 25 minutes; STORM_FLAGS="--tenants 500 --window 10s" for a short one;
#                               # STORM_FLAGS="--replicas 1,3 --nginx" runs every scenario with one
#                               # server and then three replicas behind a real nginx, in one run
#   scripts/bench.sh replicas   # 1 and 3 replicas behind nginx in one run (issue 18), not part of
#                               # "everything": about 5 minutes
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
    # A tenant's new handshake through the session cache, its access token
    # secret decrypted again or remembered.
    run repair go test -run '^$' -bench BenchmarkRepairHandshake -benchtime 200x ./internal/broker/
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
  storm)
    # N tenants confirm one signal before the auction: the simulator 50 ms
    # away with IBKR's pacing on, PostgreSQL with fsync on, one
    # `ordertune serve`; warm storm, burst, keep-alive, repair storm after
    # IBKR restarted, cold storms after a server restart, pacing soak.
    # --replicas 1,3 --nginx: the same with three replicas behind nginx.
    scripts/ensure-deps.sh nginx
    # shellcheck disable=SC2086
    run storm go run ./scripts/storm --bin .bin/ordertune ${STORM_FLAGS:-} ;;
  replicas)
    # Three `ordertune serve` processes and a real nginx, 200 tenants:
    # confirm p50/p99 with 3 replicas and then with 1, the lease renewal as
    # the replicas timed it, the SIGTERM and SIGKILL hand-overs, each with
    # the load averages around it.
    scripts/ensure-deps.sh nginx
    run replicas go test -run '^$' -bench BenchmarkReplicasThroughNginx -benchtime 1x -v -timeout 20m ./cmd/ordertune/ ;;
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
