#!/usr/bin/env bash
# Lease renewal cost (issue 14): N Tasmota access points on a local
# Mosquitto, every one on with a lease, borne renewing each every third of
# the lease. A short lease (12 s: a renewal every 4 s per AP) compresses
# what a 20-minute lease does in 100 times the time; the script measures
# borne's CPU per renewal over a window and prints one summary line,
# scaled to `lease_minutes: 20`.
#
#   BORNE=target/release/borne benches/lease_renewal.sh
#   LEASE_BENCH_APS=1000 LEASE_BENCH_WINDOW=30 (defaults)
#
# Talks to 127.0.0.1 only; stops what it started by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
BORNE=${BORNE:-target/release/borne}
N=${LEASE_BENCH_APS:-1000}
LEASE=12
WINDOW=${LEASE_BENCH_WINDOW:-30}
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$BORNE" ] || { echo "no $BORNE: cargo build --release first" >&2; exit 1; }
[ -x "$MOSQUITTO" ] || { echo "mosquitto not installed" >&2; exit 1; }

dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
mport=$(free_port)
hport=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\nmax_queued_messages 100000\n' "$mport" > "$dir/mosquitto.conf"
"$MOSQUITTO" -c "$dir/mosquitto.conf" >/dev/null 2>&1 &
pids+=($!)

{
  printf 'listen: 127.0.0.1:%s\nstate_dir: %s/state\nmetrics_public: true\n' "$hport" "$dir"
  printf 'failsafe: { lease_seconds: %s, configure_devices: false }\n' "$LEASE"
  printf 'reconciler: { max_parallel: 256 }\n'
  printf 'mqtt: { host: 127.0.0.1, port: %s }\n' "$mport"
  printf 'schedules:\n  on: { default_mode: on }\nschools:\n  - id: s\n    schedule: on\n    classrooms:\n'
  for i in $(seq 1 "$N"); do
    printf '      - { id: c%s, access_points: [ { id: p%s, mqtt: { preset: tasmota, topic: plug-%s } } ] }\n' "$i" "$i" "$i"
  done
} > "$dir/borne.yaml"
RUST_LOG=warn "$BORNE" run --config "$dir/borne.yaml" >/dev/null 2>"$dir/borne.log" &
bpid=$!
pids+=($bpid)

metric() { curl -sf "http://127.0.0.1:$hport/metrics" | awk -v m="$1" 'index($0, m) == 1 {s += $NF} END {print s + 0}'; }
for _ in $(seq 1 300); do
  [ "$(metric 'borne_lease_renewals_total{result="ok"}')" -gt "$N" ] 2>/dev/null && break
  sleep 0.2
done
cpu() { awk '{print $14 + $15}' "/proc/$bpid/stat"; }
hz=$(getconf CLK_TCK)
r0=$(metric 'borne_lease_renewals_total{result="ok"}'); c0=$(cpu)
sleep "$WINDOW"
r1=$(metric 'borne_lease_renewals_total{result="ok"}'); c1=$(cpu)
err=$(metric 'borne_lease_renewals_total{result="error"}')
awk -v n="$N" -v r="$((r1 - r0))" -v c="$((c1 - c0))" -v hz="$hz" -v w="$WINDOW" -v e="$err" -v bin="$BORNE" 'BEGIN {
  per = c / hz / r;                # CPU seconds per renewal
  perMin = n * 3 / 20;             # renewals per minute at lease_minutes 20
  printf "lease renewal, %d MQTT (tasmota) APs, %s: %.0f renewals/s measured (%d errors), %.0f us CPU per renewal; at lease_minutes 20: %.0f renewals/min, %.3f%% of one core\n",
    n, bin, r / w, e, per * 1e6, perMin, perMin * per / 60 * 100
}'
