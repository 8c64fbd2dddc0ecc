#!/usr/bin/env bash
# Runs one fuzz target as one libFuzzer job (the machine is shared), for at most
# SECONDS_MAX, and stops it earlier once its edge coverage (`cov:`) has not grown for
# PLATEAU_SECONDS. Writes under fuzz/logs/: TARGET.log (libFuzzer's output) and
# TARGET.timeline (every 15 s: seconds since start, then libFuzzer's newest status line).
#
# Usage: fuzz/run.sh TARGET [SECONDS_MAX=1200] [PLATEAU_SECONDS=300]
set -euo pipefail
target=$1
max=${2:-1200}
plateau=${3:-300}
cd "$(dirname "$0")/.."
mkdir -p fuzz/logs
timeline=fuzz/logs/$target.timeline
# With -jobs, libFuzzer writes the job's output to fuzz-0.log in the working directory.
rm -f fuzz-0.log
: > "$timeline"
setsid cargo +nightly fuzz run --sanitizer none "$target" -- \
    -jobs=1 -workers=1 -max_total_time="$max" -print_final_stats=1 \
    > "fuzz/logs/$target.cargo" 2>&1 &
group=$!
start=$(date +%s)
last_cov=""
since=$start
while kill -0 "$group" 2>/dev/null; do
    sleep 15
    now=$(date +%s)
    line=$(grep -a 'cov:' fuzz-0.log 2>/dev/null | tail -n 1 || true)
    echo "$((now - start)) $line" >> "$timeline"
    cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<< "$line")
    if [[ -z "$cov" ]]; then
        since=$now # still building or loading the corpus: no plateau yet
    elif [[ "$cov" != "$last_cov" ]]; then
        last_cov=$cov
        since=$now
    elif (( now - since >= plateau )); then
        echo "$((now - start)) stopped: cov $cov unchanged for ${plateau}s" >> "$timeline"
        kill -INT -- "-$group" 2>/dev/null || true
        break
    fi
done
wait "$group" || true
mv -f fuzz-0.log "fuzz/logs/$target.log" 2>/dev/null || true
echo "elapsed $(( $(date +%s) - start ))s" >> "$timeline"
tail -n 3 "$timeline"
