#!/usr/bin/env bash
# ab_rates.sh [ROUNDS]: throughput without and with the shim, interleaved
# (plain, shim, plain, shim ...) so that a busy machine's load falls on both
# alike; prints the median req/s of each and the ratio. Not a test (nothing is
# asserted): the figures of the README's table. redis-benchmark (-n 100000
# -c 20 -P 4, SET and GET) against redis-server, and wrk (-t2 -c20 -d3s, a
# 4 KB file) against nginx (2 workers); server and client both under the shim,
# or neither.
source "$(dirname "$0")/../../lib.sh"
ROUNDS=${1:-5}
export RESHIM_RUN_DIR="$TMP/run"
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

rp=$(free_port); rs=$(free_port)
spawn redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" --logfile '' >/dev/null
spawn env LD_PRELOAD="$SHIM" redis-server --port "$rs" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" --logfile '' >/dev/null
mkdir -p "$TMP/www"; head -c 4096 /dev/urandom >"$TMP/www/f.bin"
np=$(free_port); ns=$(free_port)
for v in p s; do
    port=$np; [ $v = s ] && port=$ns
    mkdir -p "$TMP/n$v"
    cat >"$TMP/n$v/nginx.conf" <<EOC
user root; worker_processes 2; daemon off; master_process on; pid $TMP/n$v/pid; error_log $TMP/n$v/err warn;
events { worker_connections 256; }
http { access_log off; sendfile on; keepalive_requests 100000; client_body_temp_path $TMP/n$v/body;
  server { listen 127.0.0.1:$port; root $TMP/www; } }
EOC
done
spawn nginx -p "$TMP/np" -c "$TMP/np/nginx.conf" -e "$TMP/np/err"
spawn env LD_PRELOAD="$SHIM" nginx -p "$TMP/ns" -c "$TMP/ns/nginx.conf" -e "$TMP/ns/err"
for p in $rp $rs $np $ns; do wait_port "$p" 20 || { echo "server on $p did not start" >&2; exit 1; }; done

for r in $(seq "$ROUNDS"); do
    for v in p s; do
        pre=(); [ $v = s ] && pre=(env LD_PRELOAD="$SHIM")
        port=$rp; [ $v = s ] && port=$rs
        "${pre[@]}" redis-benchmark -p "$port" -n 100000 -c 20 -P 4 -t set,get --csv >"$TMP/r.csv"
        sed -n 's/^"SET","\([0-9.]*\)".*/\1/p' "$TMP/r.csv" >>"$TMP/set.$v"
        sed -n 's/^"GET","\([0-9.]*\)".*/\1/p' "$TMP/r.csv" >>"$TMP/get.$v"
        port=$np; [ $v = s ] && port=$ns
        "${pre[@]}" wrk -t2 -c20 -d3s "http://127.0.0.1:$port/f.bin" | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' >>"$TMP/wrk.$v"
    done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores, $ROUNDS rounds, medians"
printf '| %-34s | %12s | %12s | %5s |\n' "benchmark" "without" "with shim" "ratio"
for t in set get wrk; do
    a=$(median <"$TMP/$t.p"); b=$(median <"$TMP/$t.s")
    case $t in
    set) name="redis-benchmark SET (-c20 -P4)" ;; get) name="redis-benchmark GET (-c20 -P4)" ;; wrk) name="wrk nginx 4 KB file (-t2 -c20)" ;;
    esac
    printf '| %-34s | %12.0f | %12.0f | %5s |\n' "$name" "$a" "$b" "$(ratio "$b" "$a")"
done
