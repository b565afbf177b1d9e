#!/usr/bin/env bash
# Benchmark timewait against the crates-only floor (and tshark when present)
# on generated captures. Prints one markdown table per capture, then one
# summary table of every case with the ratios the targets are stated in.
#
#   benches/run.sh                  # every case below
#   CASES="100M" benches/run.sh     # only the 100 MB one
#   TSHARK_SIZES="100M 1G" ...      # run tshark on the 1 GB file too (slow)
#   RUNS=5 KEEP=1 DIR=/tmp/x ...    # runs per tool, keep captures, where to put them
#   INPUTS=0 ...                    # skip the stdin and zstd rows (run on 100M only)
#
# Cases (examples/gen_capture.rs):
#   100M   100 MB at the default 500 connections/s
#   1G     1 GB at 1,500 connections/s (about 90,000 inside a 60 s TIME_WAIT window)
#   1G/3   the same rate, a third of the length: memory must not follow the length
#   hot    300,000 connections at 15,000/s: all of them inside one TIME_WAIT window
#
# Wall time is the median of RUNS runs with a warm page cache, the three
# tools interleaved run by run (other load on the machine hits them alike),
# and each run's ratio to the floor's run of the same round is listed too;
# peak RSS is the largest of those runs (/usr/bin/time). Never used as a test.
set -euo pipefail

cd "$(dirname "$0")/.."
CASES=${CASES:-${SIZES:-"100M 1G 1G/3 hot"}}
TSHARK_SIZES=${TSHARK_SIZES:-"100M"}
INPUTS=${INPUTS:-1}
RUNS=${RUNS:-3}
DIR=${DIR:-/tmp/timewait-bench}
KEEP=${KEEP:-0}

if [[ ! -x /usr/bin/time ]]; then
    echo "benches/run.sh needs GNU time: apt-get install time" >&2
    exit 2
fi

cargo build --release --quiet --bin timewait --example gen_capture --example floor
BIN=target/release/timewait
GEN=target/release/examples/gen_capture
FLOOR=target/release/examples/floor
mkdir -p "$DIR"

# one_run NAME CMD... -> appends this run's wall time and peak RSS (KB).
declare -A walls rss
one_run() {
    local name=$1 start end out
    shift
    start=$(date +%s%N)
    /usr/bin/time -f "%M" -o "$DIR/.rss" "$@" >/dev/null 2>"$DIR/.err" || {
        echo "failed: $* (see $DIR/.err)" >&2
        return 1
    }
    end=$(date +%s%N)
    walls[$name]+="$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }') "
    out=$(tail -n1 "$DIR/.rss")
    ((out > ${rss[$name]:-0})) && rss[$name]=$out
    return 0
}

median() {
    printf '%s\n' $1 | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

gen_args() {
    case $1 in
    100M) echo "--size 100M" ;;
    1G) echo "--size 1G --rate 1500" ;;
    1G/3) echo "--size 358M --rate 1500" ;;
    hot) echo "--conns 300000 --rate 15000" ;;
    *) echo "--size $1" ;;
    esac
}

# ratios TOOL_WALLS FLOOR_WALLS -> "median 2.31 (2.10-2.55)": each run's
# time over the floor's in the same round, so that a slow moment of the
# machine weighs on both sides of one ratio rather than on one median.
ratios() {
    paste <(printf '%s\n' $1) <(printf '%s\n' $2) | awk '{ print $1 / $2 }' | sort -n |
        awk '{ v[NR] = $1 } END { printf "median %.2f (%.2f-%.2f)", v[int((NR + 1) / 2)], v[1], v[NR] }'
}

summary=()
spread=()
for case in $CASES; do
    file="$DIR/bench-${case//\//-of-}.pcap"
    if [[ ! -s "$file" ]]; then
        # shellcheck disable=SC2046
        "$GEN" "$file" $(gen_args "$case") 2>/dev/null
    fi
    bytes=$(stat -L -c %s "$file")
    read -r packets tuples < <("$FLOOR" "$file" | awk '{ print $1, $3 }')
    conns=$("$BIN" conns --format ndjson "$file" | wc -l)
    cat "$file" >/dev/null # warm the page cache
    echo
    echo "### $case ($(gen_args "$case")): $((bytes / 1000000)) MB, $packets packets, $conns connections ($tuples 4-tuples)"
    echo
    echo "| what | wall (median of $RUNS) | MB/s | packets/s | peak RSS | × floor |"
    echo "|---|---:|---:|---:|---:|---:|"
    walls=()
    rss=()
    rows=(floor analyze ndjson)
    for _ in $(seq "$RUNS"); do
        one_run floor "$FLOOR" "$file"
        one_run analyze "$BIN" analyze "$file"
        one_run ndjson "$BIN" conns --format ndjson "$file"
    done
    if [[ "$INPUTS" == 1 && "$case" == 100M ]]; then
        # Standard input, and a zstd file next to the time zstd itself takes.
        rows+=(stdin)
        for _ in $(seq "$RUNS"); do one_run stdin bash -c "cat '$file' | '$BIN' analyze -"; done
        if command -v zstd >/dev/null; then
            [[ -s "$file.zst" ]] || zstd -q -1 -T0 -f "$file" -o "$file.zst"
            rows+=(unzstd zstd)
            for _ in $(seq "$RUNS"); do
                one_run unzstd zstd -q -dc "$file.zst"
                one_run zstd "$BIN" analyze "$file.zst"
            done
        fi
    fi
    if command -v tshark >/dev/null && [[ " $TSHARK_SIZES " == *" $case "* ]]; then
        rows+=(tshark)
        one_run tshark tshark -n -q -z conv,tcp -r "$file"
    fi
    floor_wall=$(median "${walls[floor]}")
    for r in "${rows[@]}"; do
        case $r in
        floor) label="floor: pcap-parser + etherparse + FxHash map (examples/floor.rs)" ;;
        analyze) label="\`timewait analyze\` (every detector)" ;;
        ndjson) label="\`timewait conns --format ndjson\`" ;;
        stdin) label="\`timewait analyze -\` (standard input, from cat)" ;;
        unzstd) label="\`zstd -dc FILE.zst\` alone (decompression, for scale)" ;;
        zstd) label="\`timewait analyze FILE.zst\` (zstd -1)" ;;
        tshark) label="\`tshark -q -z conv,tcp\` (1 run)" ;;
        esac
        awk -v l="$label" -v w="$(median "${walls[$r]}")" -v m="${rss[$r]}" -v b="$bytes" -v p="$packets" -v f="$floor_wall" \
            'BEGIN { printf "| %s | %.3f s | %.0f | %.2f M | %.0f MB | %.2f |\n", l, w, b / 1e6 / w, p / 1e6 / w, m / 1024, w / f }'
    done
    spread+=("$case: analyze $(ratios "${walls[analyze]}" "${walls[floor]}"), ndjson $(ratios "${walls[ndjson]}" "${walls[floor]}")")
    summary+=("$case $((bytes / 1000000)) $conns $floor_wall ${rss[floor]} $(median "${walls[analyze]}") ${rss[analyze]} $(median "${walls[ndjson]}") ${rss[ndjson]}")
    [[ "$KEEP" == 1 ]] || rm -f "$file" "$file.zst"
done

# One table of every case: the speed target is analyze within 2x of the
# floor; the memory targets are 64 MB for 1G, within 15 % of 1G/3, and
# 120 MB for the hot window.
echo
echo "### Summary (medians of $RUNS interleaved runs)"
echo
echo "| case | MB | connections | floor | analyze | × floor | analyze RSS | ndjson | × floor | ndjson RSS |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for row in "${summary[@]}"; do
    # shellcheck disable=SC2086
    set -- $row
    awk -v c="$1" -v mb="$2" -v n="$3" -v f="$4" -v a="$6" -v ar="$7" -v j="$8" -v jr="$9" \
        'BEGIN { printf "| %s | %d | %d | %.3f s | %.3f s (%.0f MB/s) | %.2f | %.0f MB | %.3f s | %.2f | %.0f MB |\n",
                 c, mb, n, f, a, mb / a, a / f, ar / 1024, j, j / f, jr / 1024 }'
done
echo
echo "Each run over the floor's run of the same round (median, range):"
echo
for line in "${spread[@]}"; do
    echo "- $line"
done
third=$(printf '%s\n' "${summary[@]}" | awk '$1 == "1G/3" { print $7 }')
full=$(printf '%s\n' "${summary[@]}" | awk '$1 == "1G" { print $7 }')
if [[ -n "$third" && -n "$full" ]]; then
    awk -v a="$full" -v b="$third" 'BEGIN { printf "\n`analyze` peak RSS, 1G over 1G/3: %.2f (target <= 1.15)\n", a / b }'
fi
rm -f "$DIR/.rss" "$DIR/.err"
