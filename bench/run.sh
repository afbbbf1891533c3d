#!/usr/bin/env bash
# Lanyard's benchmarks, each reported as a ratio against a baseline measured
# in the same run (this kind of box is noisy: runs alternate, medians taken).
# Needs PostgreSQL on 127.0.0.1:5432 (LANYARD_TEST_POSTGRES_URL overrides).
# Usage: bench/run.sh [rounds]   (default 5; results also land in bench/results/)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
out=bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
tmp=$(mktemp -d)

# A scratch database for the external load runs, dropped at exit.
admin=${LANYARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
benchdb=lanyard_bench_$$
psql "$admin" -qc "CREATE DATABASE $benchdb"
trap 'psql "$admin" -qc "DROP DATABASE IF EXISTS $benchdb WITH (FORCE)"; rm -rf "$tmp"' EXIT
dburl=$(printf '%s' "$admin" | sed -E "s#/[^/?]+(\?|$)#/$benchdb\1#")

go test -c -o "$tmp/identity.test" ./internal/identity
go test -c -o "$tmp/httpapi.test" ./internal/httpapi
go test -c -o "$tmp/verifier.test" ./verifier
go build -o "$tmp/lanyard" ./cmd/lanyard
go build -o "$tmp/loginflood" ./bench/loginflood

# median FILE BENCH UNIT: the median of a benchmark's metric over all rounds.
median() {
  awk -v b="^$2-" -v u="$3" '$1 ~ b { for (i = 3; i < NF; i++) if ($(i+1) == u) print $i }' "$1" \
    | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'
}

echo "rounds: $rounds; $(nproc) CPUs; $(go version)"
for i in $(seq "$rounds"); do
  echo "round $i/$rounds"
  (cd internal/identity && "$tmp/identity.test" -test.run '^$' -test.bench 'MintAccessToken|RawECDSASign' -test.benchtime 2s) >> "$out/mint.txt"
  (cd verifier && "$tmp/verifier.test" -test.run '^$' -test.bench '^Benchmark(Verify|RawECDSAVerify)$' -test.benchtime 2s) >> "$out/verify.txt"
  # Raw argon2id on every CPU, then logins from a separate process (16 clients)
  # right after it, so the two share the box's conditions as far as possible.
  (cd internal/httpapi && "$tmp/httpapi.test" -test.run '^$' -test.bench 'RawArgon2idParallel' -test.benchtime 5s) >> "$out/login.txt"
  "$tmp/loginflood" -bin "$tmp/lanyard" -clients 16 -duration 8s -db "$dburl" \
    | sed -nE 's/^logins ok=[0-9]+ \(([0-9.]+)\/s\).*/BenchmarkLoginExternal-x 1 \1 logins\/s/p' >> "$out/login.txt"
  (cd internal/httpapi && "$tmp/httpapi.test" -test.run '^$' -test.bench 'LoginPostgres' -test.benchtime 5s) >> "$out/login.txt"
  (cd internal/httpapi && "$tmp/httpapi.test" -test.run '^$' -test.bench 'RefreshPostgres' -test.benchtime 5s) >> "$out/refresh.txt"
done
"$tmp/loginflood" -bin "$tmp/lanyard" -clients 200 -duration 15s | tee "$out/flood.txt"
# Another client's logins while 500 connections flood bogus logins from one address.
"$tmp/loginflood" -fairness -bin "$tmp/lanyard" -clients 500 -duration 20s | tee "$out/fairness.txt"

# pairs FILE BASE BASEUNIT OTHER OTHERUNIT: per-round OTHER/BASE ratios, one per line.
pairs() {
  paste -d' ' \
    <(awk -v b="^$2-" -v u="$3" '$1 ~ b { for (i = 3; i < NF; i++) if ($(i+1) == u) print $i }' "$1") \
    <(awk -v b="^$4-" -v u="$5" '$1 ~ b { for (i = 3; i < NF; i++) if ($(i+1) == u) print $i }' "$1") \
    | awk '{ print $2 / $1 }'
}
mid() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'; }

{
  echo
  echo "== summary: medians of $rounds rounds; ratios are paired within a round, then the median taken"
  printf "token minting      %.1f µs vs raw ecdsa.Sign %.1f µs -> %.2fx (goal <= 1.3x); per round: %s\n" \
    "$(median "$out/mint.txt" BenchmarkMintAccessToken ns/op | awk '{ print $1/1000 }')" \
    "$(median "$out/mint.txt" BenchmarkRawECDSASign ns/op | awk '{ print $1/1000 }')" \
    "$(pairs "$out/mint.txt" BenchmarkRawECDSASign ns/op BenchmarkMintAccessToken ns/op | mid)" \
    "$(pairs "$out/mint.txt" BenchmarkRawECDSASign ns/op BenchmarkMintAccessToken ns/op | awk '{ printf "%.2fx ", $1 }')"
  printf "token verification %.1f µs (verifier package, cached JWKS) vs raw ecdsa.Verify %.1f µs -> %.2fx (goal <= 1.3x); per round: %s\n" \
    "$(median "$out/verify.txt" BenchmarkVerify ns/op | awk '{ print $1/1000 }')" \
    "$(median "$out/verify.txt" BenchmarkRawECDSAVerify ns/op | awk '{ print $1/1000 }')" \
    "$(pairs "$out/verify.txt" BenchmarkRawECDSAVerify ns/op BenchmarkVerify ns/op | mid)" \
    "$(pairs "$out/verify.txt" BenchmarkRawECDSAVerify ns/op BenchmarkVerify ns/op | awk '{ printf "%.2fx ", $1 }')"
  printf "login throughput   %.1f logins/s (16 clients, separate process, Postgres) vs raw argon2id %.1f hashes/s -> %.0f%% (goal >= 90%%); per round: %s\n" \
    "$(median "$out/login.txt" BenchmarkLoginExternal logins/s)" "$(median "$out/login.txt" BenchmarkRawArgon2idParallel hashes/s)" \
    "$(pairs "$out/login.txt" BenchmarkRawArgon2idParallel hashes/s BenchmarkLoginExternal logins/s | mid | awk '{ print 100*$1 }')" \
    "$(pairs "$out/login.txt" BenchmarkRawArgon2idParallel hashes/s BenchmarkLoginExternal logins/s | awk '{ printf "%.0f%% ", 100*$1 }')"
  printf "                   %.1f logins/s in-process Go benchmark (its client shares the CPUs) -> %.0f%%\n" \
    "$(median "$out/login.txt" BenchmarkLoginPostgres req/s)" \
    "$(pairs "$out/login.txt" BenchmarkRawArgon2idParallel hashes/s BenchmarkLoginPostgres req/s | mid | awk '{ print 100*$1 }')"
  printf "refresh, Postgres, 32 clients: %s req/s, p50 %s ms, p99 %s ms, %s statements per refresh\n" \
    "$(median "$out/refresh.txt" BenchmarkRefreshPostgres req/s)" "$(median "$out/refresh.txt" BenchmarkRefreshPostgres p50_ms)" \
    "$(median "$out/refresh.txt" BenchmarkRefreshPostgres p99_ms)" "$(median "$out/refresh.txt" BenchmarkRefreshPostgres stmts/refresh)"
  grep -E '^(rss|server)' "$out/flood.txt"
  printf "hash-slot fairness (500 flood connections from one address; goal >= 95%% ok): %s\n" "$(grep -E '^user logins' "$out/fairness.txt")"
} | tee "$out/summary.txt"
