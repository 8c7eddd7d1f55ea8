# Process helpers for the scripts that start socialauth's stack
# (tests/bench/run.sh, deploy/grafana/picture/run.sh); sourced, not run.
# The caller defines `log` and keeps the pids it started in the array
# STARTED.

# True while pid $1 runs (a zombie does not count).
alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# Stops the given pids: TERM, up to 10 s, then KILL; reaps them.
stop_pids() {
  local pid deadline left
  [ "$#" -gt 0 ] || return 0
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + 10))
  while :; do
    left=()
    for pid in "$@"; do alive "$pid" && left+=("$pid"); done
    [ "${#left[@]}" -gt 0 ] || break
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "killing ${left[*]} (no exit 10 s after SIGTERM)"
      for pid in "${left[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
      break
    fi
    sleep 0.2
  done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

# Removes the given pids from STARTED (they were stopped already).
forget_pids() {
  local keep=() pid gone
  for pid in "${STARTED[@]}"; do
    for gone in "$@"; do [ "$pid" = "$gone" ] && continue 2; done
    keep+=("$pid")
  done
  STARTED=("${keep[@]}")
}

# A TCP port free on 127.0.0.1 at the time of asking.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
