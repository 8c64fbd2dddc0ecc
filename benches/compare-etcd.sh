#!/usr/bin/env bash
# HAL against etcd, the store many teams would use instead (issue 7): the same workload,
# the same concurrency and the same failover measurement, in one run on this machine.
#
#   etcd side: three etcd members on 127.0.0.1 (etcd's default timing and fsync) and the
#   counting-semaphore recipe (a lease per client kept alive as the heartbeat, a
#   transaction that takes one of COUNT slot keys as the checkout, a delete as the
#   checkin): benches/etcd-load, see its doc comment for why that recipe.
#   HAL side: three `hal-net serve` processes driven by hal-load.
#
# Steps: install etcd (Debian's etcd-server) and protoc (etcd-client's build needs it) if
# absent, build both tools, then run in turn
#   hal-load load --half-peak, etcd-load load --half-peak   (closed loop, then open at half)
#   hal-load failover --fault kill, etcd-load failover      (kill -9 of the serving member)
# and end with one line, every figure hal divided by etcd:
#   compare: hal/etcd cycles_per_s=R1 p99_latency=R2 failover_p99=R3
# cycles_per_s from the closed loops (above 1: HAL serves more), p99_latency the checkout
# p99 of the open loops at half of each one's own peak, failover_p99 the p99 time to the
# first checkout after the kill (below 1: HAL is faster).
#
# Settings (environment): CLIENTS (64), DURATION (10s), WARMUP (2s), TRIALS (20),
# BACKGROUND clients during failover (8), SEED (1), RUN_DIR (target/compare-etcd: the
# clusters' files, each step's output and compare-etcd.log).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
TRIALS=${TRIALS:-20}
BACKGROUND=${BACKGROUND:-8}
SEED=${SEED:-1}
RUN_DIR=${RUN_DIR:-$ROOT/target/compare-etcd}
LOG=$RUN_DIR/compare-etcd.log

# Process groups of the tools started (each runs in a session of its own, with the
# servers it starts): the trap stops whatever is still running, whatever ended the script.
STARTED=()
cleanup() {
    local pid
    for pid in "${STARTED[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${STARTED[@]}"; do
        for _ in $(seq 50); do
            kill -0 -- "-$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    # etcd members whose tool was killed before it could stop them.
    local file member
    for file in "$RUN_DIR"/etcd-*/m*.pid; do
        [ -f "$file" ] || continue
        member=$(cat "$file")
        if [ "$(cat "/proc/$member/comm" 2>/dev/null)" = etcd ]; then
            kill -KILL "$member" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { echo "compare-etcd: $*" | tee -a "$LOG" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_missing() {
    local packages=()
    command -v etcd >/dev/null || packages+=(etcd-server)
    command -v protoc >/dev/null || packages+=(protobuf-compiler)
    if [ "${#packages[@]}" -gt 0 ]; then
        say "installing ${packages[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"
    fi
}

# Runs one tool in a session of its own, its output shown, logged and kept in
# $RUN_DIR/$1.out; fails the script if the tool fails.
step() {
    local name=$1
    shift
    local out=$RUN_DIR/$name.out
    say "$name: $*"
    : >"$out"
    setsid "$@" >"$out" 2>&1 &
    local pid=$!
    STARTED+=("$pid")
    tail -n +1 -s 0.2 -f --pid="$pid" "$out" | tee -a "$LOG" >&2 &
    local shown=$!
    local rc=0
    wait "$pid" || rc=$?
    wait "$shown" || true
    if [ "$rc" -ne 0 ]; then
        say "$name failed (exit $rc): see $out"
        exit 1
    fi
}

# The value of `key=` on the line of $1.out that starts with $2.
figure() {
    local line value
    line=$(grep -m1 "^$2" "$RUN_DIR/$1.out" || true)
    value=$(sed -n "s/.* $3=\([^ ]*\).*/\1/p" <<<"$line")
    if [ -z "$value" ]; then
        say "no $3 on a line '$2...' in $RUN_DIR/$1.out"
        exit 1
    fi
    echo "$value"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.2f", a / b }'; }

mkdir -p "$RUN_DIR"
: >"$LOG"
install_missing
# Each client holds connections to three servers, each server one per client.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

build() {
    say "cargo build --release $* (output in $RUN_DIR/build.out)"
    if ! cargo build --release "$@" >>"$RUN_DIR/build.out" 2>&1; then
        tail -n 40 "$RUN_DIR/build.out" >&2
        say "the build failed"
        exit 1
    fi
}
: >"$RUN_DIR/build.out"
build -p hal-net -p hal-benches
build --manifest-path benches/etcd-load/Cargo.toml
HAL_LOAD=${CARGO_TARGET_DIR:-$ROOT/target}/release/hal-load
ETCD_LOAD=${CARGO_TARGET_DIR:-$ROOT/benches/etcd-load/target}/release/etcd-load
ETCD=$(command -v etcd)
say "$("$ETCD" --version | head -n 1), $(nproc) cores, CLIENTS=$CLIENTS DURATION=$DURATION TRIALS=$TRIALS"

load_args=(--clients "$CLIENTS" --duration "$DURATION" --warmup "$WARMUP" --half-peak)
failover_args=(--fault kill --trials "$TRIALS" --background-clients "$BACKGROUND" --seed "$SEED")
step hal-load "$HAL_LOAD" load "${load_args[@]}" --dir "$RUN_DIR/hal-load"
step etcd-load "$ETCD_LOAD" load "${load_args[@]}" --etcd "$ETCD" --dir "$RUN_DIR/etcd-load"
step hal-failover "$HAL_LOAD" failover "${failover_args[@]}" --dir "$RUN_DIR/hal-failover"
step etcd-failover "$ETCD_LOAD" failover "${failover_args[@]}" --etcd "$ETCD" \
    --dir "$RUN_DIR/etcd-failover"

hal_rate=$(figure hal-load "load: system=hal mode=closed" cycles_per_s)
etcd_rate=$(figure etcd-load "load: system=etcd mode=closed" cycles_per_s)
hal_p99=$(figure hal-load "load: system=hal mode=open" checkout_p99_ms)
etcd_p99=$(figure etcd-load "load: system=etcd mode=open" checkout_p99_ms)
hal_fail=$(figure hal-failover "failover: system=hal" p99_ms)
etcd_fail=$(figure etcd-failover "failover: system=etcd" p99_ms)

{
    echo
    printf '%-38s %12s %12s %10s\n' "" hal etcd hal/etcd
    printf '%-38s %12s %12s %10s\n' "cycles/s, closed loop ($CLIENTS clients)" \
        "$hal_rate" "$etcd_rate" "$(ratio "$hal_rate" "$etcd_rate")"
    printf '%-38s %12s %12s %10s\n' "checkout p99 ms, open at half peak" \
        "$hal_p99" "$etcd_p99" "$(ratio "$hal_p99" "$etcd_p99")"
    printf '%-38s %12s %12s %10s\n' "failover p99 ms, kill -9 ($TRIALS trials)" \
        "$hal_fail" "$etcd_fail" "$(ratio "$hal_fail" "$etcd_fail")"
    echo
    echo "compare: hal/etcd cycles_per_s=$(ratio "$hal_rate" "$etcd_rate")" \
        "p99_latency=$(ratio "$hal_p99" "$etcd_p99")" \
        "failover_p99=$(ratio "$hal_fail" "$etcd_fail")"
} | tee -a "$LOG"
