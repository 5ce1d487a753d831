#!/usr/bin/env bash
# CI: every fuzz harness of fuzz/ for a short fixed budget on the committed seeds (and the committed inputs
# of past findings, fuzz/crashes/), on a fresh corpus; exits non-zero on a finding, naming the harness and
# the input saved. Installs what it needs (atheris; refcodec itself when it is not importable).
#
#   fuzz/ci.sh                       # FUZZ_SECONDS=20 per harness: 100 s of fuzzing, about 2.5 min in all
#   FUZZ_SECONDS=5 fuzz/ci.sh stream json
#
# Reproduce a finding:  python fuzz/fuzz_<harness>.py <saved input>   (see fuzz/README.md)
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
SECONDS_EACH="${FUZZ_SECONDS:-20}"
HARNESSES=("$@")
[ ${#HARNESSES[@]} -eq 0 ] && HARNESSES=(stream model json rans judge)

"$PY" -c "import atheris" 2>/dev/null || "$PY" -m pip install -q atheris || { echo "fuzz/ci.sh: cannot install atheris" >&2; exit 2; }
"$PY" -c "import refcodec" 2>/dev/null || "$PY" -m pip install -q -e . || { echo "fuzz/ci.sh: cannot install refcodec" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/refcodec-fuzz-ci.XXXXXX")"
KEEP="${FUZZ_ARTIFACTS:-fuzz/artifacts}"  # git-ignored; where the input of a finding is copied
failed=()
for h in "${HARNESSES[@]}"; do
    seeds="fuzz/seeds/$h"
    [ "$h" = model ] && seeds="fuzz/seeds/models"
    corpora=("$WORK/corpus/$h" "$seeds")
    [ -d "fuzz/crashes/$h" ] && corpora+=("fuzz/crashes/$h")
    extra=()
    [ "$h" = model ] && extra+=(-max_len=131072)
    [ "$h" = json ] && extra+=(-max_len=8192)
    mkdir -p "$WORK/corpus/$h" "$WORK/artifacts/$h"
    echo "== fuzz_$h: $SECONDS_EACH s"
    "$PY" "fuzz/fuzz_$h.py" -max_total_time="$SECONDS_EACH" -timeout=30 -rss_limit_mb=3072 \
        -dict=fuzz/refcodec.dict -print_final_stats=1 -artifact_prefix="$WORK/artifacts/$h/" "${extra[@]}" \
        "${corpora[@]}" >"$WORK/$h.log" 2>&1
    status=$?
    grep -a -E '^#[0-9]+[[:space:]]+DONE|^stat::number_of_executed_units|^Done ' "$WORK/$h.log" | sed 's/^/   /'
    if [ $status -ne 0 ] || [ -n "$(ls -A "$WORK/artifacts/$h")" ]; then
        failed+=("$h")
        mkdir -p "$KEEP/$h"
        cp "$WORK/artifacts/$h/"* "$KEEP/$h/" 2>/dev/null
        echo "   FINDING in fuzz_$h (exit status $status); the last lines of its log:"
        tail -n 40 "$WORK/$h.log" | sed 's/^/   | /'
        for f in "$KEEP/$h/"*; do [ -e "$f" ] && echo "   reproduce: $PY fuzz/fuzz_$h.py $f"; done
    fi
done
rm -rf "$WORK"
if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz/ci.sh: findings in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz/ci.sh: no finding"
