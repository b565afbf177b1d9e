#!/bin/sh
# Runs the fuzz targets one after another, -j1, each for its budget in
# seconds; a crash is saved under artifacts/<target>/ and the target
# restarts for the rest of its budget. Usage: fuzz/run-all.sh [target:secs ...]
# (build first: RUSTC_BOOTSTRAP=1 cargo fuzz build).
cd "$(dirname "$0")" || exit 1
BIN=target/x86_64-unknown-linux-gnu/release
[ $# -gt 0 ] || set -- decode:600 reassembly:600 pipeline:1800 capture_reader:900
for spec in "$@"; do
    t=${spec%%:*}; budget=${spec#*:}
    mkdir -p corpus/$t artifacts/$t logs seeds/capture
    case $t in
        decode) seeds=seeds/decode ;;
        reassembly) mkdir -p seeds/reassembly; seeds=seeds/reassembly ;;
        *) seeds=seeds/capture; cp ../fixtures/*.pcap ../fixtures/*.pcapng corpus/$t/ ;;
    esac
    # The public captures in ../../shared/corpus make good seeds too; they
    # are copied at run time into the (git-ignored) corpus folder, never
    # committed: they are other projects' files, test input only.
    if [ "$t" != decode ] && [ -d ../../shared/corpus ]; then
        find ../../shared/corpus -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) \
            -size -64k -exec cp -t corpus/$t/ {} + 2>/dev/null
    fi
    end=$(( $(date +%s) + budget )); n=0
    while [ $(( left = end - $(date +%s) )) -gt 5 ] && [ $n -lt 20 ]; do
        n=$((n + 1))
        timeout $((left + 60)) $BIN/$t corpus/$t $seeds -max_len=65536 -rss_limit_mb=2048 \
            -timeout=10 -max_total_time=$left -print_final_stats=1 \
            -artifact_prefix=artifacts/$t/ >> logs/$t.log 2>&1
        echo "== $t run $n exit $? at $(date +%T)" >> logs/$t.log
        sleep 2
    done
done
