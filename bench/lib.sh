# shellcheck shell=bash
# shellcheck disable=SC2154 # admin, tmp and out are the caller's
# Shared by bench/*/run.sh (sourced, not run). Expects the caller to have set
# admin (a Postgres admin URL), tmp (a scratch directory) and out (the results
# directory), and to be in the repository root.
# Every server it starts is recorded in pids and stopped at exit; every
# database it creates is recorded in dbs and dropped at exit.

pids=()
dbs=()

cleanup() {
  local rc=$? pid db
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for db in "${dbs[@]}"; do psql "$admin" -qXc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# dburl NAME: the admin URL pointed at database NAME.
dburl() { printf '%s' "$admin" | sed -E "s#/[^/?]+(\?|$)#/$1\1#"; }

# newdb NAME: a scratch database, dropped at exit.
newdb() { psql "$admin" -qXc "CREATE DATABASE \"$1\""; dbs+=("$1"); }

# wait_http URL LOGFILE PID: up to 30 s for a 200, failing early if the server died.
wait_http() {
  for _ in $(seq 300); do
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { echo "server for $1 exited; end of $2:" >&2; tail -20 "$2" >&2; return 1; }
    sleep 0.1
  done
  echo "no 200 from $1 within 30 s; end of $2:" >&2; tail -20 "$2" >&2; return 1
}

# start_peer SRC DB PORT: runs the Better-Auth peer from a private copy of SRC
# (shared/ is read-only) on 127.0.0.1:PORT with its own scratch database DB.
# Sets peer_base and peer_pid.
start_peer() {
  local src=$1 db=$2 port=$3 peer=$tmp/better-auth
  mkdir -p "$peer"
  (cd "$src" && tar --exclude=./node_modules --exclude=./results --exclude='*.pid' --exclude='*.log' -cf - .) | tar -xf - -C "$peer"
  chmod -R u+w "$peer"
  if [[ -d $src/node_modules ]]; then
    ln -s "$(cd "$src" && pwd)/node_modules" "$peer/node_modules"
  else
    echo "installing the Better-Auth peer's dependencies (npm ci, into $peer)"
    (cd "$peer" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) >"$out/npm-ci.log" 2>&1 ||
      { cat "$out/npm-ci.log" >&2; return 1; }
  fi
  peer_base=http://127.0.0.1:$port
  local env=(DATABASE_URL="$(dburl "$db")" PEER_DB="$db" ADMIN_DATABASE_URL="$admin" PORT="$port" BETTER_AUTH_URL="$peer_base")
  newdb "$db"
  (cd "$peer" && env "${env[@]}" npm run --silent migrate) >"$out/betterauth-migrate.log" 2>&1 ||
    { cat "$out/betterauth-migrate.log" >&2; return 1; }
  # `npm start` is `node server.mjs`; run node directly so its pid is the server's.
  (cd "$peer" && exec env "${env[@]}" node server.mjs) >"$out/betterauth.log" 2>&1 &
  peer_pid=$!
  pids+=("$peer_pid")
  wait_http "$peer_base/healthz" "$out/betterauth.log" "$peer_pid"
}
