#!/usr/bin/env bash
# Refresh throughput: Lanyard vs the Better-Auth peer vs a pgbench floor, in one run.
# See bench/refresh/README.md. Usage (from anywhere):
#   bench/refresh/run.sh [rounds]        # default 3 rounds
# Environment: CLIENTS (32), DURATION (seconds, 10), WARMUP (seconds, 2),
#   PEER_DIR (../shared/peers/better-auth from the repo root),
#   LANYARD_TEST_POSTGRES_URL (admin URL; default postgres://postgres@127.0.0.1:5432/postgres).
# Everything listens on 127.0.0.1 only; every load loop is bounded in time; the
# servers and scratch databases this script starts are stopped/dropped at exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
clients=${CLIENTS:-32}
duration=${DURATION:-10}
warmup=${WARMUP:-2}
peer_src=${PEER_DIR:-../shared/peers/better-auth}
admin=${LANYARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
[[ $rounds =~ ^[1-9][0-9]*$ && $clients =~ ^[1-9][0-9]*$ && $duration =~ ^[1-9][0-9]*$ && $warmup =~ ^[0-9]+$ ]] ||
  { echo "usage: $0 [rounds]; CLIENTS, DURATION, WARMUP must be integers" >&2; exit 2; }
for tool in go psql pgbench node npm; do
  command -v "$tool" >/dev/null || { echo "missing $tool (pgbench: apt-get install postgresql-client)" >&2; exit 1; }
done
[[ -f $peer_src/server.mjs ]] || { echo "Better-Auth peer not found at $peer_src (set PEER_DIR)" >&2; exit 1; }

out=bench/results/refresh-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
tmp=$(mktemp -d)
tag=refresh_bench_$$
lanyard_db=${tag}_lanyard
peer_db=${tag}_betterauth
pg_db=${tag}_pgbench

# shellcheck source=bench/lib.sh
source bench/lib.sh

# ---- build ----
echo "building lanyard and the load generator"
go build -o "$tmp/lanyard" ./cmd/lanyard
go build -o "$tmp/load" ./bench/refresh/load
load=$tmp/load

{
  echo "date: $(date -u +%FT%TZ)"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo none)$([[ -z $(git status --porcelain 2>/dev/null) ]] || echo ' (work tree has uncommitted changes)')"
  echo "cpus: $(nproc); $(go version); node $(node --version); $(pgbench --version)"
  echo "postgres: $(psql "$admin" -AtXc 'show server_version') shared_buffers=$(psql "$admin" -AtXc 'show shared_buffers') synchronous_commit=$(psql "$admin" -AtXc 'show synchronous_commit')"
  echo "clients=$clients duration=${duration}s warmup=${warmup}s rounds=$rounds"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/env.txt"

# ---- Lanyard on a scratch database ----
newdb "$lanyard_db"
lanyard_port=$("$load" -free-port)
LANYARD_DATABASE_URL=$(dburl "$lanyard_db") \
  LANYARD_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n') \
  LANYARD_ADDR=127.0.0.1:$lanyard_port LANYARD_ADMIN_ADDR=off LANYARD_RATE_LIMIT_SIGNUP_IP=0 \
  LANYARD_ISSUER=http://127.0.0.1:$lanyard_port \
  LANYARD_DATA_DIR=$tmp/lanyard-data \
  LANYARD_LOG_LEVEL=warn \
  "$tmp/lanyard" serve >"$out/lanyard.log" 2>&1 &
lanyard_pid=$!
pids+=("$lanyard_pid")

# ---- Better-Auth peer: a private copy, its own scratch database ----
start_peer "$peer_src" "$peer_db" "$("$load" -free-port)"

# ---- pgbench floor: Lanyard's schema (its migrations' Up sections), one session row per client ----
newdb "$pg_db"
for f in internal/store/migrations/postgres/*.sql; do
  sed -n '/^-- +goose Up/,/^-- +goose Down/p' "$f"
done | psql "$(dburl "$pg_db")" -qX -v ON_ERROR_STOP=1 >/dev/null
psql "$(dburl "$pg_db")" -qX -v ON_ERROR_STOP=1 <<SQL
INSERT INTO users (id, email, password_hash, created_at, updated_at)
  SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'bench' || i || '@example.com',
         '\$argon2id\$v=19\$m=19456,t=2,p=1\$x\$y', now(), now()
  FROM generate_series(1, $clients) i;
INSERT INTO sessions (id, user_id, secret_hash, created_at, rotated_at, last_used_at, expires_at)
  SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid,
         sha256(convert_to(i::text, 'UTF8')), now(), now(), now(), now() + interval '30 days'
  FROM generate_series(1, $clients) i;
VACUUM ANALYZE users, sessions;
SQL
# Each pgbench client updates its own row, as each Lanyard client rotates its own session.
sid="('00000000-0000-0000-0000-' || lpad(:n::text, 12, '0'))::uuid"
cat >"$out/refresh.pgbench.sql" <<SQL
\set n :client_id + 1
UPDATE sessions SET generation = generation + 1, rotated_at = now(), last_used_at = now() WHERE id = $sid RETURNING generation;
SQL
# Diagnostic: Lanyard's own rotate statement (rotateSessionPostgres in
# internal/store/sessions.go; keep the two in step), with its parameters as
# pgbench variables or now()-based values; \gset carries the generation forward.
# $fp stands for the client fingerprint parameter (16 bytes), the same on every call.
fp="'\\x00112233445566778899aabbccddeeff'::bytea"
cat >"$out/rotate.pgbench.sql" <<SQL
\set n :client_id + 1
WITH s AS (UPDATE sessions SET generation = CASE WHEN generation = :gen THEN generation + 1 ELSE generation END, rotated_at = CASE WHEN generation = :gen THEN now() ELSE rotated_at END, rotated_by = CASE WHEN generation = :gen THEN $fp ELSE rotated_by END, last_used_at = CASE WHEN generation = :gen OR (generation = :gen + 1 AND rotated_at > now() - interval '10 seconds' AND ($fp IS NULL OR rotated_by IS NULL OR rotated_by = $fp)) THEN now() ELSE last_used_at END, revoked_at = CASE WHEN generation = :gen OR (generation = :gen + 1 AND rotated_at > now() - interval '10 seconds' AND ($fp IS NULL OR rotated_by IS NULL OR rotated_by = $fp)) THEN revoked_at ELSE now() END, revoke_reason = CASE WHEN generation = :gen OR (generation = :gen + 1 AND rotated_at > now() - interval '10 seconds' AND ($fp IS NULL OR rotated_by IS NULL OR rotated_by = $fp)) THEN revoke_reason ELSE 'reuse' END WHERE id = $sid AND secret_hash = sha256(convert_to(:n::text, 'UTF8')) AND revoked_at IS NULL AND generation >= :gen AND expires_at > now() AND last_used_at > now() - interval '168 hours' AND clock_timestamp() < now() + interval '3 seconds' RETURNING generation, revoke_reason, expires_at, user_id), a AS (INSERT INTO audit_events (at, type, user_id, actor, ip, user_agent, details) SELECT now(), 'refresh_reuse_detected', s.user_id, 'user', '', '', '{}'::jsonb FROM s WHERE s.revoke_reason = 'reuse') SELECT s.generation AS gen, s.revoke_reason, s.expires_at, s.user_id, u.email, u.name, u.created_at, u.email_verified_at, p.python_proficiency, p.developer_role, p.completed_at FROM s JOIN users u ON u.id = s.user_id LEFT JOIN profiles p ON p.user_id = s.user_id
\gset
SQL

# ---- one measurement of each kind: each appends one line to $out/<kind>.txt ----
run_lanyard() {
  "$load" -target lanyard -url "http://127.0.0.1:$lanyard_port" -clients "$clients" \
    -duration "${duration}s" -warmup "${warmup}s" -server-pid "$lanyard_pid" | tee -a "$out/lanyard.txt" ||
    { echo "lanyard load failed; end of $out/lanyard.log:" >&2; tail -20 "$out/lanyard.log" >&2; return 1; }
}
run_betterauth() {
  "$load" -target betterauth -url "$peer_base" -clients "$clients" \
    -duration "${duration}s" -warmup "${warmup}s" -server-pid "$peer_pid" | tee -a "$out/betterauth.txt" ||
    { echo "better-auth load failed; end of $out/betterauth.log:" >&2; tail -20 "$out/betterauth.log" >&2; return 1; }
}
pgbench_runs=0
# pgbench_with NAME SCRIPT: warmup, then the measured run with a per-transaction log.
pgbench_with() {
  local name=$1 script=$2 url log tps cpu p50 p99 tx errs pgpid
  pgbench_runs=$((pgbench_runs + 1))
  url=$(dburl "$pg_db")
  log=$tmp/pgbench-$pgbench_runs
  # Every session back to generation 0 (the rotate script starts each client at gen=0).
  psql "$url" -qXc "UPDATE sessions SET generation = 0, revoked_at = NULL, revoke_reason = NULL, rotated_at = now(), last_used_at = now()"
  if ((warmup > 0)); then
    pgbench -n -f "$script" -c "$clients" -j 2 -M prepared -D gen=0 -T "$warmup" "$url" >"$tmp/pgbench.out" 2>&1 ||
      { cat "$tmp/pgbench.out" >&2; return 1; }
    psql "$url" -qXc "UPDATE sessions SET generation = 0"
  fi
  pgbench -n -f "$script" -c "$clients" -j 2 -M prepared -D gen=0 -T "$duration" \
    -l --log-prefix="$log" "$url" >"$tmp/pgbench.out" 2>&1 &
  pgpid=$!
  pids+=("$pgpid")
  # CPU readings inside pgbench's run (1 s in from each end), beside it.
  cpu=$("$load" -target none -server-pid "$pgpid" -warmup 1s -duration "$((duration > 2 ? duration - 2 : 1))s" |
    sed -E 's/^target=none duration=[^ ]+ //; s/cpu_server=/cpu_client=/')
  wait "$pgpid" || { cat "$tmp/pgbench.out" >&2; return 1; }
  { echo "== $name"; cat "$tmp/pgbench.out"; } >>"$out/pgbench-raw.txt"
  tps=$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p' "$tmp/pgbench.out")
  tx=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$tmp/pgbench.out")
  errs=$(sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p' "$tmp/pgbench.out")
  grep -q 'aborted' "$tmp/pgbench.out" && errs=$((${errs:-0} + 1)) # a client stopped on an error
  # Per-transaction log: column 3 is the latency in microseconds.
  read -r p50 p99 < <(cat "$log".* | awk '{ print $3 }' | sort -n |
    awk '{ v[NR] = $1 } END { i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999); printf "%.2f %.2f\n", v[i50] / 1000, v[i99] / 1000 }')
  rm -f "$log".*
  echo "target=$name clients=$clients duration=${duration}s requests=$tx errors=${errs:-0} req_per_s=$(printf %.1f "$tps") p50_ms=$p50 p99_ms=$p99 $cpu" |
    tee -a "$out/$name.txt"
}
run_pgbench() { pgbench_with pgbench "$out/refresh.pgbench.sql"; }
run_pgbench_rotate() { if [[ -s $out/rotate.pgbench.sql ]]; then pgbench_with pgbench_rotate "$out/rotate.pgbench.sql"; fi; }

order=(lanyard betterauth pgbench pgbench_rotate)
for r in $(seq "$rounds"); do
  echo "== round $r/$rounds (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  for k in 0 1 2 3; do
    # Rotate the order each round so no system always runs first or last.
    "run_${order[$(((r - 1 + k) % 4))]}"
  done
done

# ---- summary ----
field() { sed -nE "s/.* $2=([^ ]+).*/\1/p" "$out/$1.txt"; }   # one value per round
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratios() { paste -d' ' <(field "$1" req_per_s) <(field "$2" req_per_s) | awk '{ printf "%.3f\n", $1 / $2 }'; }
{
  echo
  echo "== refresh benchmark: $rounds rounds x ${duration}s, $clients clients, medians (cpu in cores, of $(nproc))"
  printf '%-14s %9s %8s %8s %6s %7s %7s %8s %6s %5s %5s %5s\n' system req/s p50_ms p99_ms errors loader server postgres other irq steal box
  for s in lanyard betterauth pgbench pgbench_rotate; do
    [[ -s $out/$s.txt ]] || continue
    srv=cpu_server; [[ $s == pgbench* ]] && srv=cpu_client
    printf '%-14s %9.1f %8.2f %8.2f %6s %7.2f %7.2f %8.2f %6.2f %5.2f %5.2f %5.2f\n' "$s" \
      "$(field $s req_per_s | median)" "$(field $s p50_ms | median)" "$(field $s p99_ms | median)" \
      "$(field $s errors | awk '{ s += $1 } END { print s + 0 }')" \
      "$(field $s cpu_loader | median)" "$(field $s $srv | median)" "$(field $s cpu_postgres | median)" \
      "$(field $s cpu_other | median)" "$(field $s cpu_irq | median)" "$(field $s cpu_steal | median)" "$(field $s cpu_box | median)"
  done
  echo
  echo "CPU per request, ms (per round: cores / req/s; medians). Less sensitive to a busy box than req/s:"
  printf '%-14s %8s %8s %8s %8s\n' system loader server postgres sum
  for s in lanyard betterauth pgbench pgbench_rotate; do
    [[ -s $out/$s.txt ]] || continue
    srv=cpu_server; [[ $s == pgbench* ]] && srv=cpu_client
    per() { paste -d' ' <(field "$s" "$1") <(field "$s" req_per_s) | awk '{ printf "%.4f\n", ($2 > 0) ? 1000 * $1 / $2 : 0 }' | median; }
    sum=$(paste -d' ' <(field "$s" cpu_loader) <(field "$s" "$srv") <(field "$s" cpu_postgres) <(field "$s" req_per_s) |
      awk '{ printf "%.4f\n", ($4 > 0) ? 1000 * ($1 + $2 + $3) / $4 : 0 }' | median)
    printf '%-14s %8.3f %8.3f %8.3f %8.3f\n' "$s" "$(per cpu_loader)" "$(per "$srv")" "$(per cpu_postgres)" "$sum"
  done
  echo
  echo "(pgbench rows: 'loader' is the CPU sampler only, 'server' is the pgbench client;"
  echo " pgbench_rotate is a diagnostic: Lanyard's own rotate statement, no HTTP, no signing)"
  lb=$(ratios lanyard betterauth | median)
  lp=$(ratios lanyard pgbench | median)
  printf 'lanyard / betterauth = %.2fx (goal >= 10x: %s); per round: %s\n' "$lb" \
    "$(awk -v r="$lb" 'BEGIN { print (r >= 10) ? "met" : "NOT met" }')" "$(ratios lanyard betterauth | tr '\n' ' ')"
  printf 'lanyard / pgbench    = %.1f%% (goal >= 50%%: %s); per round: %s\n' "$(awk -v r="$lp" 'BEGIN { print 100 * r }')" \
    "$(awk -v r="$lp" 'BEGIN { print (r >= 0.5) ? "met" : "NOT met" }')" "$(ratios lanyard pgbench | tr '\n' ' ')"
  if [[ -s $out/pgbench_rotate.txt ]]; then
    printf 'lanyard / pgbench_rotate = %.1f%% (diagnostic: how far HTTP + Go + signing sit below Lanyard'"'"'s own SQL)\n' \
      "$(awk -v r="$(ratios lanyard pgbench_rotate | median)" 'BEGIN { print 100 * r }')"
    printf 'pgbench_rotate / pgbench = %.1f%% (what Lanyard'"'"'s statement costs Postgres against the single UPDATE)\n' \
      "$(awk -v r="$(ratios pgbench_rotate pgbench | median)" 'BEGIN { print 100 * r }')"
  fi
  echo "(ratios are paired within a round, then the median is taken)"
  # HOT updates avoid touching the indexes; an index on an updated column rules them out.
  for db in "$lanyard_db" "$pg_db"; do
    psql "$(dburl "$db")" -AtXc "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'sessions'" |
      awk -F'|' -v n="${db#"${tag}"_}" '{ printf "sessions updates in the %s database: %d, of which HOT %d (%.0f%%)\n", n, $1, $2, ($1 ? 100 * $2 / $1 : 0) }'
  done
  echo "sessions indexes: $(psql "$(dburl "$pg_db")" -AtXc "SELECT string_agg(indexname, ', ' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'sessions'")"
  echo "results: $out"
} | tee "$out/summary.txt"
