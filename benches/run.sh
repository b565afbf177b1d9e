#!/usr/bin/env bash
# Benchmark timewait against the crates-only floor (and tshark when present)
# on generated captures. Prints one markdown table per capture.
#
#   benches/run.sh                  # 100 MB and 1 GB captures
#   SIZES="100M" benches/run.sh     # only the 100 MB one
#   TSHARK_SIZES="100M 1G" ...      # run tshark on the 1 GB file too (slow)
#   RUNS=5 KEEP=1 DIR=/tmp/x ...    # runs per tool, keep captures, where to put them
#   INPUTS=0 ...                    # skip the stdin and zstd rows
#
# Wall time is the median of RUNS runs with a warm page cache; peak RSS is
# the largest of those runs (/usr/bin/time). Never used as a test.
set -euo pipefail

cd "$(dirname "$0")/.."
SIZES=${SIZES:-"100M 1G"}
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

# run_one LABEL CMD... -> prints "wall_s rss_kb" per run, median/max folded later
measure() {
    local walls=() rss=0 out
    for _ in $(seq "$RUNS"); do
        local start end
        start=$(date +%s%N)
        /usr/bin/time -f "%M" -o "$DIR/.rss" "$@" >/dev/null 2>"$DIR/.err" || {
            echo "failed: $* (see $DIR/.err)" >&2
            return 1
        }
        end=$(date +%s%N)
        walls+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')")
        out=$(tail -n1 "$DIR/.rss")
        ((out > rss)) && rss=$out
    done
    local median
    median=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    echo "$median $rss"
}

for size in $SIZES; do
    file="$DIR/bench-$size.pcap"
    if [[ ! -s "$file" ]]; then
        "$GEN" "$file" --size "$size" 2>/dev/null
    fi
    bytes=$(stat -c %s "$file")
    read -r packets tuples < <("$FLOOR" "$file" | awk '{ print $1, $3 }')
    conns=$("$BIN" conns --format ndjson "$file" | wc -l)
    cat "$file" >/dev/null # warm the page cache
    echo
    echo "### $(basename "$file"): $((bytes / 1000000)) MB, $packets packets, $conns connections ($tuples 4-tuples)"
    echo
    echo "| what | wall (median of $RUNS) | MB/s | packets/s | peak RSS | × floor |"
    echo "|---|---:|---:|---:|---:|---:|"
    declare -A wall rss
    rows=(floor analyze ndjson)
    read -r wall[floor] rss[floor] < <(measure "$FLOOR" "$file")
    read -r wall[analyze] rss[analyze] < <(measure "$BIN" analyze "$file")
    read -r wall[ndjson] rss[ndjson] < <(measure "$BIN" conns --format ndjson "$file")
    if [[ "$INPUTS" == 1 ]]; then
        # Standard input, and a zstd file next to the time zstd itself takes.
        rows+=(stdin)
        read -r wall[stdin] rss[stdin] < <(measure bash -c "cat '$file' | '$BIN' analyze -")
        if command -v zstd >/dev/null; then
            [[ -s "$file.zst" ]] || zstd -q -1 -T0 -f "$file" -o "$file.zst"
            rows+=(unzstd zstd)
            read -r wall[unzstd] rss[unzstd] < <(measure zstd -q -dc "$file.zst")
            read -r wall[zstd] rss[zstd] < <(measure "$BIN" analyze "$file.zst")
        fi
    fi
    if command -v tshark >/dev/null && [[ " $TSHARK_SIZES " == *" $size "* ]]; then
        rows+=(tshark)
        read -r wall[tshark] rss[tshark] < <(RUNS=1 measure tshark -n -q -z conv,tcp -r "$file")
    fi
    for r in "${rows[@]}"; do
        case $r in
        floor) label="floor: pcap-parser + etherparse + HashMap (examples/floor.rs)" ;;
        analyze) label="\`timewait analyze\` (every detector)" ;;
        ndjson) label="\`timewait conns --format ndjson\`" ;;
        stdin) label="\`timewait analyze -\` (standard input, from cat)" ;;
        unzstd) label="\`zstd -dc FILE.zst\` alone (decompression, for scale)" ;;
        zstd) label="\`timewait analyze FILE.zst\` (zstd -1)" ;;
        tshark) label="\`tshark -q -z conv,tcp\` (1 run)" ;;
        esac
        awk -v l="$label" -v w="${wall[$r]}" -v m="${rss[$r]}" -v b="$bytes" -v p="$packets" -v f="${wall[floor]}" \
            'BEGIN { printf "| %s | %.3f s | %.0f | %.2f M | %.0f MB | %.2f |\n", l, w, b / 1e6 / w, p / 1e6 / w, m / 1024, w / f }'
    done
    unset wall rss
    [[ "$KEEP" == 1 ]] || rm -f "$file" "$file.zst"
done
rm -f "$DIR/.rss" "$DIR/.err"
