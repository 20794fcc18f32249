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
    inits=$(grep -c "Init Duration" "$dir/emulator.log" || true)
    failed=$(grep -ho "[0-9]* of [0-9]* requests failed" "$dir"/locust*.log | awk '{s+=$1} END{print s+0}')
    worst=$(grep -o "Contended: invoke [0-9.]*x" "$dir/emulator.log" | sed 's/.* //; s/x//' | sort -n | tail -1)
    verdicts=$(grep -h "^verdict" "$dir"/locust*.log | sed 's/verdict: //' | paste -sd, -)
    echo "$(date -u +%H:%M:%S) $side-$i exit=$rc $(( $(date +%s) - start ))s cold_starts=$inits failed=$failed worst_contended=${worst:-none} verdicts=$verdicts"
  done
done
