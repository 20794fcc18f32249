#!/usr/bin/env bash
# Taking turns between two checkouts of this project: the README's side-by-side example, in a
# fresh emulator each time with one CPU-bound job beside it, and what each run's emulator log
# shows (docs/benchmarks.md, "The spawn held the event loop").
#   docs/scripts/stall_ab.sh BEFORE_CHECKOUT AFTER_CHECKOUT PAIRS OUT_DIR
# Run it from a virtualenv that has this project's dependencies. Each checkout's own code runs:
# `python -m` from its root puts that root first on sys.path (not with PYTHONSAFEPATH set, which
# is refused). A run "stalled" when all 20 environments its two functions may have started were
# started and requests failed; a run whose tool failed says so instead of giving figures.
set -euo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 BEFORE_CHECKOUT AFTER_CHECKOUT PAIRS OUT_DIR" >&2
  exit 2
fi
if [ -n "${PYTHONSAFEPATH:-}" ]; then
  echo "$0: PYTHONSAFEPATH is set: both checkouts would run the installed code" >&2
  exit 2
fi
before=$(realpath "$1"); after=$(realpath "$2"); pairs=$3; out=$(realpath -m "$4")
mkdir -p "$out"
hog=""
trap '[ -n "$hog" ] && kill "$hog" 2>/dev/null; exit 130' INT TERM
for i in $(seq 1 "$pairs"); do
  for side in before after; do
    root=$before; [ "$side" = after ] && root=$after
    dir=$out/$side-$i
    rm -rf "$dir" "$dir.out"  # bench.sidebyside refuses a folder holding results (exit 2)
    python3 -c "while True: pass" & hog=$!
    start=$(date +%s)
    rc=0
    (cd "$root" && timeout --foreground 300 python -m bench.sidebyside \
        --config examples/two-versions/emulator.toml staging/spin-main staging/spin-pr \
        --out "$dir" > "$dir.out" 2>&1) || rc=$?
    kill "$hog" 2>/dev/null || true
    hog=""
    stamp="$(date -u +%H:%M:%S) $side-$i exit=$rc $(( $(date +%s) - start ))s"
    if [ "$rc" -ne 0 ]; then
      echo "$stamp run failed: see $dir.out"
      continue
    fi
    inits=$(grep -c "Init Duration" "$dir/emulator.log" || true)
    failed=$(cat "$dir"/locust*.log | grep -o "[0-9]* of [0-9]* requests failed" \
        | awk '{s+=$1} END{print s+0}' || true)
    # "Contended: invoke 5.99x" or, on a cold start's line, "Contended: init 1.50x, invoke 5.99x"
    worst=$(grep -o "Contended: [^[:cntrl:]]*" "$dir/emulator.log" | grep -o "invoke [0-9.]*x" \
        | sed 's/invoke //; s/x//' | sort -n | tail -1 || true)
    verdicts=$(cat "$dir"/locust*.log | grep "^verdict" | sed 's/verdict: //' | paste -sd, - || true)
    stalled=no
    if [ "$inits" -ge 20 ] && [ "$failed" -gt 0 ]; then stalled=yes; fi
    echo "$stamp stalled=$stalled cold_starts=$inits failed=$failed worst_contended=${worst:-none} verdicts=$verdicts"
  done
done
