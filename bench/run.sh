#!/usr/bin/env bash
# Lanyard's benchmarks, each reported as a ratio against a baseline measured
# in the same run (this kind of box is noisy: runs alternate, medians taken).
# Needs PostgreSQL on 127.0.0.1:5432 (LANYARD_TEST_POSTGRES_URL overrides).
# Usage: bench/run.sh [rounds]   (default 3; results also land in bench/results/)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
out=bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go test -c -o "$tmp/identity.test" ./internal/identity
go test -c -o "$tmp/httpapi.test" ./internal/httpapi
go build -o "$tmp/lanyard" ./cmd/lanyard

# median FILE BENCH UNIT: the median of a benchmark's metric over all rounds.
median() {
  awk -v b="^$2-" -v u="$3" '$1 ~ b { for (i = 3; i < NF; i++) if ($(i+1) == u) print $i }' "$1" \
    | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'
}

echo "rounds: $rounds; $(nproc) CPUs; $(go version)"
for i in $(seq "$rounds"); do
  echo "round $i/$rounds"
  (cd internal/identity && "$tmp/identity.test" -test.run '^$' -test.bench 'MintAccessToken|RawECDSASign' -test.benchtime 2s) >> "$out/mint.txt"
  (cd internal/httpapi && "$tmp/httpapi.test" -test.run '^$' -test.bench 'RawArgon2idParallel|LoginPostgres' -test.benchtime 5s) >> "$out/login.txt"
  (cd internal/httpapi && "$tmp/httpapi.test" -test.run '^$' -test.bench 'RefreshPostgres' -test.benchtime 5s) >> "$out/refresh.txt"
done
go run ./bench/loginflood -bin "$tmp/lanyard" -clients 200 -duration 15s | tee "$out/flood.txt"

mint=$(median "$out/mint.txt" BenchmarkMintAccessToken ns/op)
raw=$(median "$out/mint.txt" BenchmarkRawECDSASign ns/op)
logins=$(median "$out/login.txt" BenchmarkLoginPostgres req/s)
hashes=$(median "$out/login.txt" BenchmarkRawArgon2idParallel hashes/s)
{
  echo
  echo "== summary (medians of $rounds rounds)"
  awk -v m="$mint" -v r="$raw" 'BEGIN { printf "token minting      %.1f µs vs raw ecdsa.Sign %.1f µs  -> %.2fx (goal <= 1.3x)\n", m/1000, r/1000, m/r }'
  awk -v l="$logins" -v h="$hashes" 'BEGIN { printf "login throughput   %.1f/s vs raw argon2id %.1f hashes/s -> %.0f%% (goal >= 90%%)\n", l, h, 100*l/h }'
  printf "refresh, Postgres, 32 clients: %s req/s, p50 %s ms, p99 %s ms, %s statements per refresh\n" \
    "$(median "$out/refresh.txt" BenchmarkRefreshPostgres req/s)" "$(median "$out/refresh.txt" BenchmarkRefreshPostgres p50_ms)" \
    "$(median "$out/refresh.txt" BenchmarkRefreshPostgres p99_ms)" "$(median "$out/refresh.txt" BenchmarkRefreshPostgres stmts/refresh)"
  grep '^rss' "$out/flood.txt"
} | tee "$out/summary.txt"
