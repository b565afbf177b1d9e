#!/usr/bin/env bash
# A flood of IPv4 first fragments that never complete (the FragmentSmack /
# "teardrop" class of load): memory must stay at the reassembly cap (Linux's
# ipfrag_high_thresh, 4 MB of queues) whatever the flood's size or rate.
#
#   benches/frag-flood.sh                 # 200,000 fragments at 20,000/s
#   N=1000000 RATE=100000 SIZE=1400 benches/frag-flood.sh
#
# Writes the capture (Python, stdlib), runs `timewait analyze --format json`
# under /usr/bin/time and prints wall time, peak RSS and the fragment counts
# of the skip table. Never used as a test (src/decode/frag.rs's unit tests
# check the cap itself).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200000}
RATE=${RATE:-20000}
SIZE=${SIZE:-1000}
DIR=${DIR:-/tmp/timewait-bench}
mkdir -p "$DIR"
CAP="$DIR/frag-flood-$N.pcap"
cargo build --release --quiet --bin timewait
python3 - "$CAP" "$N" "$RATE" "$SIZE" <<'PY'
import random, struct, sys
out, n, rate, size = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(1)
payload = bytes(size)
with open(out, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))  # raw IP
    for i in range(n):
        t = 1_700_000_000 + i / rate
        src = bytes([10, 8, rnd.randrange(256), rnd.randrange(1, 255)])
        ident = rnd.randrange(65536)
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + size, ident, 0x2000, 64, 6, 0, src, bytes([10, 9, 0, 1]))
        f.write(struct.pack("<IIII", int(t), int((t % 1) * 1e6), 20 + size, 20 + size))
        f.write(h + payload)
PY
ls -l "$CAP" | awk '{printf "capture: %.1f MB, %s fragments at %s/s\n", $5 / 1e6, "'"$N"'", "'"$RATE"'"}'
start=$(date +%s%N)
/usr/bin/time -f "%M" -o "$DIR/.rss" target/release/timewait analyze --format json "$CAP" >"$DIR/frag-flood.json"
end=$(date +%s%N)
echo "wall: $(( (end - start) / 1000000 )) ms, peak RSS: $(cat "$DIR/.rss") KB"
python3 -c "import json,sys; print('skipped:', json.load(open(sys.argv[1]))['captures'][0]['skipped'])" "$DIR/frag-flood.json"
