#!/usr/bin/env bash
# Taking turns, two checkouts of this project: the README's side-by-side example in a fresh
# emulator each time, one CPU-bound job beside it, and what each run's emulator log shows
# (docs/benchmarks.md, "The spawn held the event loop").
#   docs/scripts/stall_ab.sh BEFORE_CHECKOUT AFTER_CHECKOUT PAIRS OUT_DIR
# Run from a virtualenv that has this project's dependencies; each checkout's own code runs
# (python -m from its root). A run "stalled" when every environment its functions may have
# started (20 cold starts) and requests failed.
set -euo pipefail
before=$(realpath "$1"); after=$(realpath "$2"); pairs=$3; out=$(realpath -m "$4")
mkdir -p "$out"
for i in $(seq 1 "$pairs"); do
  for side in before after; do
    root=$before; [ "$side" = after ] && root=$after
    dir=$out/$side-$i
    python3 -c "while True: pass" & hog=$!
    trap 'kill $hog 2>/dev/null' EXIT
    start=$(date +%s)
    rc=0
    (cd "$root" && timeout 300 python -m bench.sidebyside --config examples/two-versions/emulator.toml \
        staging/spin-main staging/spin-pr --out "$dir" > "$dir.out" 2>&1) || rc=$?
    kill $hog; trap - EXIT
    # what is missing (no emulator log, no Locust log, nothing contended) reads 0 or "none"
    inits=$(cat "$dir/emulator.log" 2>/dev/null | grep -c "Init Duration" || true)
    failed=$(cat "$dir"/locust*.log 2>/dev/null | grep -o "[0-9]* of [0-9]* requests failed" \
        | awk '{s+=$1} END{print s+0}' || true)
    # "Contended: invoke 5.99x" or, on a cold start's line, "Contended: init 1.50x, invoke 5.99x"
    worst=$(cat "$dir/emulator.log" 2>/dev/null | grep -o "Contended: [^	]*" | grep -o "invoke [0-9.]*x" \
        | sed 's/invoke //; s/x//' | sort -n | tail -1 || true)
    verdicts=$(cat "$dir"/locust*.log 2>/dev/null | grep "^verdict" | sed 's/verdict: //' | paste -sd, - || true)
    echo "$(date -u +%H:%M:%S) $side-$i exit=$rc $(( $(date +%s) - start ))s cold_starts=$inits failed=$failed worst_contended=${worst:-none} verdicts=$verdicts"
  done
done
