#!/usr/bin/env bash
# A long campaign: every harness for its own time budget, two at a time, at nice 19, on the corpus of
# fuzz/build_corpus.py (kept and grown between runs). Logs, artifacts and the grown corpora go to
# $OUT (default fuzz/campaign/, git-ignored). fuzz/README.md records the campaigns run so far.
#
#   fuzz/campaign.sh                     # json 1500 s, rans 1200 s  ||  stream 1200 s, model 900 s, judge 600 s
#   BUDGETS="json=60 rans=60" fuzz/campaign.sh   # only these, for these budgets
#   fuzz/campaign.sh summary             # the table of fuzz/README.md from the logs in $OUT
set -uo pipefail
FUZZ="$(cd "$(dirname "$0")" && pwd)"
OUT="${OUT:-$FUZZ/campaign}"
CORPUS="${CORPUS:-$FUZZ/corpus}"
PY="${PYTHON:-python3}"
export REFCODEC_FUZZ_MEMORY="${REFCODEC_FUZZ_MEMORY:-4}"  # memory measured on one input in 4 (fuzzlib.measured)
mkdir -p "$OUT"

summary() {
    printf '| harness | executions | exec/s | cov | ft | corpus | wall time (s) | findings |\n|---|---:|---:|---:|---:|---:|---:|---:|\n'
    local total=0
    for log in "$OUT"/*.log "$OUT"/*.log.stopped; do
        [ -e "$log" ] || continue
        local h; h="$(basename "${log%.stopped}" .log)"
        local runs; runs="$(grep -a '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1)"
        [ -z "$runs" ] && runs="$(grep -a -E '^#[0-9]+' "$log" | tail -1 | sed 's/^#\([0-9]*\).*/\1/')"  # stopped early
        local eps; eps="$(grep -a '^stat::average_exec_per_sec' "$log" | awk '{print $2}' | tail -1)"
        local last; last="$(grep -a -E '^#[0-9]+' "$log" | tail -1)"
        local cov; cov="$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")"
        local ft; ft="$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")"
        local corp; corp="$(sed -n 's/.*corp: \([0-9]*\)\/.*/\1/p' <<<"$last")"
        local wall; wall="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)"
        local found; found="$(ls "$OUT/artifacts/$h" 2>/dev/null | wc -l)"
        printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$h" "${runs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" \
            "${corp:-?}" "${wall:-?}" "$found"
        total=$((total + ${runs:-0}))
    done
    printf '\ntotal executions: %s\n' "$total"
}

run() {  # run HARNESS SECONDS
    local h="$1" t="$2"
    local seeds="$FUZZ/seeds/$h"
    [ "$h" = model ] && seeds="$FUZZ/seeds/models"
    local extra=()
    [ "$h" = model ] && extra+=(-max_len=131072)
    [ "$h" = json ] && extra+=(-max_len=8192)
    mkdir -p "$CORPUS/$h" "$OUT/artifacts/$h"
    nice -n 19 "$PY" "$FUZZ/fuzz_$h.py" -max_total_time="$t" -timeout=60 -rss_limit_mb=4096 \
        -dict="$FUZZ/refcodec.dict" -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$h/" \
        "${extra[@]}" "$CORPUS/$h" "$seeds" >"$OUT/$h.log" 2>&1
    echo "$h: exit status $?" >>"$OUT/status"
}

if [ "${1:-}" = summary ]; then summary; exit 0; fi
declare -A B=([json]=1500 [rans]=1200 [stream]=1200 [model]=900 [judge]=600)
if [ -n "${BUDGETS:-}" ]; then  # only the harnesses named, for their budgets
    B=()
    for kv in $BUDGETS; do B[${kv%%=*}]="${kv#*=}"; done
fi
: >"$OUT/status"
date -u +"start %FT%TZ" >>"$OUT/status"
( for h in json rans; do [ -n "${B[$h]:-}" ] && run "$h" "${B[$h]}"; done ) &
( for h in stream model judge; do [ -n "${B[$h]:-}" ] && run "$h" "${B[$h]}"; done ) &
wait
date -u +"end %FT%TZ" >>"$OUT/status"
summary | tee "$OUT/summary.md"
