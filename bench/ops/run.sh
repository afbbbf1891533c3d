#!/usr/bin/env bash
# Operating costs, each as a ratio measured in the same run (rounds alternate,
# medians of per-round ratios):
#   1. refresh through PgBouncer (transaction mode, default_query_exec_mode=exec,
#      as on Neon's pooled endpoint) against PostgreSQL directly;
#   2. refresh and login with the audit trail against a build without it
#      (BASE, a git revision before the audit trail);
#   3. refresh directly with default_query_exec_mode=exec (unnamed statements,
#      what Lanyard picks when the server drops its startup timeouts, as
#      Neon's direct endpoint does) against pgx's default, cached statements.
# Usage: bench/ops/run.sh [rounds] [BASE]   (defaults: 3, d4190a8)
# Environment: CLIENTS (32), DURATION (seconds, 10), WARMUP (seconds, 2),
#   LOGIN_CLIENTS (16), LANYARD_TEST_POSTGRES_URL (admin URL).
# Needs Debian's pgbouncer (/usr/sbin/pgbouncer). Everything listens on
# 127.0.0.1; servers, pgbouncer and scratch databases are gone at exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
base=${2:-d4190a8}
clients=${CLIENTS:-32}
duration=${DURATION:-10}
warmup=${WARMUP:-2}
login_clients=${LOGIN_CLIENTS:-16}
admin=${LANYARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [rounds] [BASE]" >&2; exit 2; }
[[ -x /usr/sbin/pgbouncer ]] || { echo "missing /usr/sbin/pgbouncer (apt-get install pgbouncer)" >&2; exit 1; }

out=bench/results/ops-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
tmp=$(mktemp -d)
chmod 755 "$tmp"
tag=ops_bench_$$
# shellcheck source=bench/lib.sh
source bench/lib.sh

echo "building lanyard (work tree and $base) and the load generators"
go build -o "$tmp/lanyard" ./cmd/lanyard
git worktree add -q --detach "$tmp/base-src" "$base"
(cd "$tmp/base-src" && go build -o "$tmp/lanyard-base" ./cmd/lanyard)
git worktree remove --force "$tmp/base-src"
go build -o "$tmp/load" ./bench/refresh/load
go build -o "$tmp/loginflood" ./bench/loginflood
load=$tmp/load
{
  echo "date: $(date -u +%FT%TZ)"
  echo "git: $(git rev-parse --short HEAD)$([[ -z $(git status --porcelain) ]] || echo ' (work tree has uncommitted changes)'); base: $base"
  echo "cpus: $(nproc); $(go version); $(/usr/sbin/pgbouncer --version | head -1)"
  echo "clients=$clients duration=${duration}s warmup=${warmup}s rounds=$rounds login_clients=$login_clients"
} | tee "$out/env.txt"

# ---- PgBouncer in transaction mode in front of the admin URL's server ----
pgb_port=$("$load" -free-port)
host=$(printf '%s' "$admin" | sed -E 's#^[a-z]+://([^@/]*@)?([^:/?]+).*#\2#')
port=$(printf '%s' "$admin" | sed -nE 's#^[a-z]+://([^@/]*@)?[^:/?]+:([0-9]+).*#\2#p')
cat >"$tmp/pgbouncer.ini" <<INI
[databases]
* = host=$host port=${port:-5432}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgb_port
unix_socket_dir =
auth_type = trust
auth_file = $tmp/users.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 500
server_reset_query = DISCARD ALL
ignore_startup_parameters = extra_float_digits
logfile = $tmp/pgbouncer.log
INI
echo '"postgres" ""' >"$tmp/users.txt"
as_pg=()
if [[ $(id -u) == 0 ]]; then chown postgres "$tmp/pgbouncer.ini" "$tmp/users.txt"; touch "$tmp/pgbouncer.log"; chown postgres "$tmp/pgbouncer.log"; as_pg=(runuser -u postgres --); fi
"${as_pg[@]}" /usr/sbin/pgbouncer "$tmp/pgbouncer.ini" >/dev/null 2>&1 &
pids+=("$!")
# exec_mode URL: URL with pgx's default_query_exec_mode=exec.
exec_mode() { case $1 in *\?*) printf '%s' "${1/\?/?default_query_exec_mode=exec\&}" ;; *) printf '%s?default_query_exec_mode=exec' "$1" ;; esac; }
pooled() { exec_mode "$(dburl "$1" | sed -E "s#@[^/]+/#@127.0.0.1:$pgb_port/#")"; }

# start NAME BINARY DB_URL: a Lanyard on its own port; sets port_NAME, pid_NAME.
start() {
  local name=$1 bin=$2 url=$3 p
  p=$("$load" -free-port)
  LANYARD_DATABASE_URL=$url LANYARD_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n') \
    LANYARD_ADDR=127.0.0.1:$p LANYARD_ADMIN_ADDR=off LANYARD_RATE_LIMIT_SIGNUP_IP=0 \
    LANYARD_ISSUER=http://127.0.0.1:$p LANYARD_DATA_DIR=$tmp/data-$name LANYARD_LOG_LEVEL=warn \
    "$bin" serve >"$out/$name.log" 2>&1 &
  pids+=("$!")
  printf -v "port_$name" %s "$p"
  printf -v "pid_$name" %s "$!"
  wait_http "http://127.0.0.1:$p/readyz" "$out/$name.log" "$!"
}
newdb "${tag}_direct"; newdb "${tag}_pooled"; newdb "${tag}_base"; newdb "${tag}_directexec"
start direct "$tmp/lanyard" "$(dburl "${tag}_direct")"
start pooled "$tmp/lanyard" "$(pooled "${tag}_pooled")"
start base "$tmp/lanyard-base" "$(dburl "${tag}_base")"
start directexec "$tmp/lanyard" "$(exec_mode "$(dburl "${tag}_directexec")")"

refresh() {
  local name=$1 port pid
  port=port_$name pid=pid_$name
  "$load" -target lanyard -url "http://127.0.0.1:${!port}" -clients "$clients" \
    -duration "${duration}s" -warmup "${warmup}s" -server-pid "${!pid}" | tee -a "$out/refresh-$name.txt"
}
login() {
  local name=$1 bin=$2 db
  db=${tag}_login_${name}_$r
  newdb "$db"
  "$tmp/loginflood" -bin "$bin" -db "$(dburl "$db")" -clients "$login_clients" -duration "${duration}s" >"$tmp/flood.txt" 2>&1 ||
    { cat "$tmp/flood.txt" >&2; return 1; }
  cat "$tmp/flood.txt" >>"$out/loginflood-raw.txt"
  audit=""
  if [[ $name == audit ]]; then
    # What the trail costs on disk: rows written by the flood and bytes per row (heap, indexes, TOAST).
    audit=$(psql "$(dburl "$db")" -AtXc "SELECT 'audit_rows=' || count(*) || ' audit_bytes_per_row=' || (pg_total_relation_size('lanyard.audit_events') / greatest(count(*), 1)) FROM lanyard.audit_events")
  fi
  echo "target=$name logins_per_s=$(sed -nE 's/^logins ok=[0-9]+ \(([0-9.]+)\/s\).*/\1/p' "$tmp/flood.txt") cpu_ms_per_login=$(sed -nE 's/.* ([0-9.]+) ms per successful login.*/\1/p' "$tmp/flood.txt") $audit" |
    tee -a "$out/login-$name.txt"
}
for r in $(seq "$rounds"); do
  echo "== round $r/$rounds (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  if ((r % 2)); then refresh direct; refresh directexec; refresh pooled; refresh base; login audit "$tmp/lanyard"; login base "$tmp/lanyard-base"
  else refresh base; refresh pooled; refresh directexec; refresh direct; login base "$tmp/lanyard-base"; login audit "$tmp/lanyard"; fi
done

field() { sed -nE "s/.* $2=([^ ]+).*/\1/p" "$out/$1.txt"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratios() { paste -d' ' <(field "$1" "$3") <(field "$2" "$3") | awk '{ printf "%.3f\n", $1 / $2 }'; }
{
  echo
  echo "== medians over $rounds rounds"
  for s in refresh-direct refresh-directexec refresh-pooled refresh-base; do
    printf '%-16s req/s %9.1f  p50_ms %6.2f  p99_ms %6.2f  errors %s\n' "$s" "$(field $s req_per_s | median)" \
      "$(field $s p50_ms | median)" "$(field $s p99_ms | median)" "$(field $s errors | awk '{ s += $1 } END { print s + 0 }')"
  done
  cat "$out/login-audit.txt" "$out/login-base.txt"
  printf 'refresh pooled / direct       = %.3f; per round: %s\n' "$(ratios refresh-pooled refresh-direct req_per_s | median)" "$(ratios refresh-pooled refresh-direct req_per_s | tr '\n' ' ')"
  printf 'refresh audit (work tree) / base = %.3f; per round: %s\n' "$(ratios refresh-direct refresh-base req_per_s | median)" "$(ratios refresh-direct refresh-base req_per_s | tr '\n' ' ')"
  printf 'refresh direct exec / cached  = %.3f; per round: %s\n' "$(ratios refresh-directexec refresh-direct req_per_s | median)" "$(ratios refresh-directexec refresh-direct req_per_s | tr '\n' ' ')"
  printf 'login audit / base            = %.3f; per round: %s\n' "$(ratios login-audit login-base logins_per_s | median)" "$(ratios login-audit login-base logins_per_s | tr '\n' ' ')"
} | tee "$out/summary.txt"
