#!/usr/bin/env bash
# JWKS throughput: Lanyard vs a bare net/http floor writing the same bytes vs the
# Better-Auth peer's /api/auth/jwks, in one run. See bench/jwks/README.md.
# Usage (from anywhere):
#   bench/jwks/run.sh [rounds]        # default 3 rounds
# Environment: CONNS (64), THREADS (2), DURATION (seconds, 10), WARMUP (seconds, 2;
#   one wrk warm-up per target before round 1), PEER_DIR (../shared/peers/better-auth
#   from the repo root), LANYARD_TEST_POSTGRES_URL (admin URL for the peer's scratch
#   database; default postgres://postgres@127.0.0.1:5432/postgres).
# Everything listens on 127.0.0.1 only; every wrk run is bounded in time; the
# servers and the scratch database this script starts are stopped/dropped at exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
conns=${CONNS:-64}
threads=${THREADS:-2}
duration=${DURATION:-10}
warmup=${WARMUP:-2}
peer_src=${PEER_DIR:-../shared/peers/better-auth}
admin=${LANYARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
[[ $rounds =~ ^[1-9][0-9]*$ && $conns =~ ^[1-9][0-9]*$ && $threads =~ ^[1-9][0-9]*$ &&
  $duration =~ ^[1-9][0-9]*$ && $warmup =~ ^[0-9]+$ ]] ||
  { echo "usage: $0 [rounds]; CONNS, THREADS, DURATION, WARMUP must be integers" >&2; exit 2; }
for tool in go wrk curl psql node npm; do
  command -v "$tool" >/dev/null || { echo "missing $tool (wrk: apt-get install wrk)" >&2; exit 1; }
done
[[ -f $peer_src/server.mjs ]] || { echo "Better-Auth peer not found at $peer_src (set PEER_DIR)" >&2; exit 1; }

out=bench/results/jwks-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
tmp=$(mktemp -d)
peer_db=jwks_bench_$$_betterauth

# shellcheck source=bench/lib.sh
source bench/lib.sh

# ---- build ----
echo "building lanyard and the floor server"
go build -o "$tmp/lanyard" ./cmd/lanyard
go build -o "$tmp/floor" ./bench/jwks/floor
freeport() { "$tmp/floor" -free-port; }

{
  echo "date: $(date -u +%FT%TZ)"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo none)$([[ -z $(git status --porcelain 2>/dev/null) ]] || echo ' (work tree has uncommitted changes)')"
  echo "cpus: $(nproc) (wrk runs on the same box as the server under test); $(go version); node $(node --version); $(wrk -v 2>&1 | head -1)"
  echo "wrk -t$threads -c$conns -d${duration}s --latency; rounds=$rounds; warmup=${warmup}s per target before round 1"
  echo "lanyard: embedded SQLite, LANYARD_LOG_LEVEL=warn (per-request info logs off)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/env.txt"

# ---- Lanyard on embedded SQLite ----
lanyard_port=$(freeport)
lanyard_url=http://127.0.0.1:$lanyard_port/.well-known/jwks.json
LANYARD_ADDR=127.0.0.1:$lanyard_port LANYARD_ADMIN_ADDR=off \
  LANYARD_ISSUER=http://127.0.0.1:$lanyard_port \
  LANYARD_DATA_DIR=$tmp/lanyard-data \
  LANYARD_LOG_LEVEL=warn \
  "$tmp/lanyard" serve >"$out/lanyard.log" 2>&1 &
lanyard_pid=$!
pids+=("$lanyard_pid")
wait_http "$lanyard_url" "$out/lanyard.log" "$lanyard_pid"
curl -fsS -o "$out/lanyard-jwks.json" "$lanyard_url"

# ---- floor: the exact bytes Lanyard served ----
floor_port=$(freeport)
floor_url=http://127.0.0.1:$floor_port/.well-known/jwks.json
"$tmp/floor" -port "$floor_port" -body "$out/lanyard-jwks.json" >"$out/floor.log" 2>&1 &
floor_pid=$!
pids+=("$floor_pid")
wait_http "$floor_url" "$out/floor.log" "$floor_pid"
cmp -s <(curl -fsS "$floor_url") "$out/lanyard-jwks.json" || { echo "floor body differs from Lanyard's" >&2; exit 1; }

# ---- Better-Auth peer: a private copy, its own scratch database ----
start_peer "$peer_src" "$peer_db" "$(freeport)"
peer_url=$peer_base/api/auth/jwks
# Prime once: Better-Auth creates its signing key on the first JWKS request.
curl -fsS -o "$out/betterauth-jwks.json" "$peer_url"
grep -q '"keys":\[{' "$out/betterauth-jwks.json" || { echo "peer JWKS has no key:" >&2; cat "$out/betterauth-jwks.json" >&2; exit 1; }

# ---- checks: Lanyard's ETag / 304, and sizes ----
{
  echo "== response headers (GET, no conditional)"
  for u in "$lanyard_url" "$floor_url" "$peer_url"; do
    echo "-- $u"; curl -fsS -D - -o /dev/null "$u" | tr -d '\r'
  done
} >"$out/headers.txt"
etag=$(curl -fsS -D - -o /dev/null "$lanyard_url" | tr -d '\r' | sed -nE 's/^[Ee][Tt][Aa][Gg]: *(.*)$/\1/p')
[[ -n $etag ]] || { echo "Lanyard sent no ETag" >&2; exit 1; }
cond=$(curl -sS -o "$tmp/304.body" -w '%{http_code}' -H "If-None-Match: $etag" "$lanyard_url")
[[ $cond == 304 && ! -s $tmp/304.body ]] || { echo "If-None-Match: $etag gave HTTP $cond (want 304, empty body)" >&2; exit 1; }
peer_etag=$(curl -fsS -D - -o /dev/null "$peer_url" | tr -d '\r' | sed -nE 's/^[Ee][Tt][Aa][Gg]: *(.*)$/\1/p')
lanyard_bytes=$(wc -c <"$out/lanyard-jwks.json")
floor_bytes=$(curl -fsS "$floor_url" | wc -c)
peer_bytes=$(wc -c <"$out/betterauth-jwks.json")
{
  echo "lanyard ETag: $etag; GET with If-None-Match: $etag -> HTTP $cond, empty body"
  echo "better-auth ETag: ${peer_etag:-(none)}"
  echo "JWKS body bytes: lanyard=$lanyard_bytes floor=$floor_bytes betterauth=$peer_bytes"
  echo "lanyard keys: $(grep -o '"kid"' "$out/lanyard-jwks.json" | wc -l); betterauth keys: $(grep -o '"kid"' "$out/betterauth-jwks.json" | wc -l)"
} | tee "$out/checks.txt"

# ---- one wrk run of a target: appends one line to $out/<kind>.txt ----
declare -A url_of=([lanyard]=$lanyard_url [floor]=$floor_url [betterauth]=$peer_url)
declare -A pid_of=([lanyard]=$lanyard_pid [floor]=$floor_pid [betterauth]=$peer_pid)
clk=$(getconf CLK_TCK)
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }     # utime + stime of one process
box_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }  # busy, idle+iowait
to_ms() { awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.3f\n", v }'; }
run_wrk() {
  local kind=$1 raw=$tmp/wrk.out s0 s1 busy0 idle0 busy1 idle1 rps p50 p99 errs non2xx
  s0=$(proc_ticks "${pid_of[$kind]}"); read -r busy0 idle0 < <(box_ticks)
  wrk -t"$threads" -c"$conns" -d"${duration}s" --timeout 5s --latency "${url_of[$kind]}" >"$raw" 2>&1 ||
    { cat "$raw" >&2; return 1; }
  s1=$(proc_ticks "${pid_of[$kind]}"); read -r busy1 idle1 < <(box_ticks)
  { echo "== $kind"; cat "$raw"; } >>"$out/wrk-raw.txt"
  rps=$(sed -nE 's/^Requests\/sec: *([0-9.]+).*/\1/p' "$raw")
  p50=$(awk '$1 == "50%" { print $2 }' "$raw" | to_ms)
  p99=$(awk '$1 == "99%" { print $2 }' "$raw" | to_ms)
  errs=$(sed -nE 's/^ *Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+).*/\1 \2 \3 \4/p' "$raw" | awk '{ print $1 + $2 + $3 + $4 }')
  non2xx=$(sed -nE 's/^ *Non-2xx or 3xx responses: ([0-9]+).*/\1/p' "$raw")
  echo "target=$kind req_per_s=$rps p50_ms=$p50 p99_ms=$p99 socket_errors=${errs:-0} non2xx=${non2xx:-0}" \
    "cpu_server=$(awk -v a="$s0" -v b="$s1" -v c="$clk" -v d="$duration" 'BEGIN { printf "%.2f", (b - a) / c / d }')" \
    "cpu_box=$(awk -v b0="$busy0" -v i0="$idle0" -v b1="$busy1" -v i1="$idle1" -v n="$(nproc)" 'BEGIN { printf "%.2f", n * (b1 - b0) / ((b1 - b0) + (i1 - i0)) }')" |
    tee -a "$out/$kind.txt"
}

kinds=(lanyard floor betterauth)
if ((warmup > 0)); then
  echo "== warm-up: ${warmup}s per target"
  for kind in "${kinds[@]}"; do
    wrk -t"$threads" -c"$conns" -d"${warmup}s" "${url_of[$kind]}" >/dev/null 2>&1 || { echo "warm-up of $kind failed" >&2; exit 1; }
  done
fi
for r in $(seq "$rounds"); do
  echo "== round $r/$rounds (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  for k in 0 1 2; do
    # Rotate the order each round so no target always runs first or last.
    run_wrk "${kinds[$(((r - 1 + k) % 3))]}"
  done
done

# ---- summary ----
field() { sed -nE "s/.* $2=([^ ]+).*/\1/p" "$out/$1.txt"; }   # one value per round, in round order
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratios() { paste -d' ' <(field "$1" req_per_s) <(field "$2" req_per_s) | awk '{ printf "%.3f\n", $1 / $2 }'; }
pct() { awk '{ printf "%.1f%% ", 100 * $1 }'; }
{
  echo
  echo "== JWKS benchmark: $rounds rounds x ${duration}s, wrk -t$threads -c$conns, medians"
  echo "   (wrk shares the $(nproc)-CPU box with the server; cpu in cores; lanyard at LANYARD_LOG_LEVEL=warn)"
  printf '%-11s %6s %10s %8s %8s %7s %7s %8s %12s\n' target bytes req/s p50_ms p99_ms errors server box us_cpu/req
  for s in "${kinds[@]}"; do
    case $s in lanyard) b=$lanyard_bytes ;; floor) b=$floor_bytes ;; betterauth) b=$peer_bytes ;; esac
    printf '%-11s %6s %10.1f %8.3f %8.3f %7s %7.2f %8.2f %12.1f\n' "$s" "$b" \
      "$(field $s req_per_s | median)" "$(field $s p50_ms | median)" "$(field $s p99_ms | median)" \
      "$(paste -d' ' <(field $s socket_errors) <(field $s non2xx) | awk '{ s += $1 + $2 } END { print s + 0 }')" \
      "$(field $s cpu_server | median)" "$(field $s cpu_box | median)" \
      "$(paste -d' ' <(field $s cpu_server) <(field $s req_per_s) | awk '{ printf "%.2f\n", 1e6 * $1 / $2 }' | median)"
  done
  echo
  echo "per round req/s:"
  for s in "${kinds[@]}"; do printf '  %-11s %s\n' "$s" "$(field $s req_per_s | tr '\n' ' ')"; done
  echo
  lf=$(ratios lanyard floor | median)
  lb=$(ratios lanyard betterauth | median)
  printf 'lanyard / floor      = %.1f%% (goal >= 90%%: %s); per round: %s\n' "$(awk -v r="$lf" 'BEGIN { print 100 * r }')" \
    "$(awk -v r="$lf" 'BEGIN { print (r >= 0.9) ? "met" : "NOT met" }')" "$(ratios lanyard floor | pct)"
  printf 'lanyard / betterauth = %.2fx; per round: %s\n' "$lb" "$(ratios lanyard betterauth | awk '{ printf "%.2fx ", $1 }')"
  echo "(ratios are paired within a round, then the median is taken)"
  cat "$out/checks.txt"
  echo "results: $out"
} | tee "$out/summary.txt"
