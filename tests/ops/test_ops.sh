#!/usr/bin/env bash
# test_ops.sh: the operations kit (ops/) against the real reshim.
#  - a shimmed python3 (private RESHIM_RUN_DIR) with a destination; its
#    `reshim metrics` passes promtool check metrics;
#  - every metric name, grouping label and matched label value of the alert
#    rules and of the Grafana dashboard is in that output (check_names.py),
#    and the dashboard's queries parse (promtool check rules);
#  - the Kubernetes example: YAML parses; the app runs under reshim-run, the
#    sidecar's command, port, run directory, uid and env names agree with
#    each other and with the CLI (the sidecar's command line is run here
#    against the app's, with the emptyDir a temporary directory); and, when
#    the npm packages are there (make ops-k8s-deps), the objects validate
#    against the Kubernetes schemas.
# The promtool rule checks and unit tests run from tests/ops/ops.mk.
source "$(dirname "$0")/../integration/lib.sh"
RESHIM="$ROOT/build/reshim"
OPS="$ROOT/ops"
[ -x "$RESHIM" ] && [ -f "$SHIM" ] || fail "build first (make all)"
command -v promtool >/dev/null || fail "promtool not found: apt-get install prometheus (make deps)"
"$PY" -c 'import yaml' 2>/dev/null || fail "python3-yaml not found (make deps)"

# A python3 under the shim that connects to a port nobody listens on (so the
# destination families appear), says so in a file, then waits to be killed.
APP='import socket, sys, time
s = socket.socket()
s.settimeout(2)
try: s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError: pass
open(sys.argv[2], "w").write("ready")
time.sleep(600)'

echo "== the metric names of the alerts and the dashboard against reshim metrics"
RUN="$TMP/run"
port=$(free_port)
spawn env LD_PRELOAD="$SHIM" RESHIM_RUN_DIR="$RUN" RESHIM_RETRIES=1 RESHIM_MEM_BUDGET=500M \
    "$PY" -c "$APP" "$port" "$TMP/ready"
app=$!
wait_until 15 test -S "$RUN/$app.sock" || fail "no stats socket $RUN/$app.sock within 15 s"
wait_until 15 test -s "$TMP/ready" || fail "the app did not connect within 15 s"
RESHIM_RUN_DIR="$RUN" "$RESHIM" metrics "$app" >"$TMP/metrics.txt" || fail "reshim metrics failed"
grep -q "^reshim_info{pid=\"$app\"" "$TMP/metrics.txt" || fail "reshim metrics: no sample of pid $app"
grep -q '^reshim_destination_connects_total{.*dir="out"' "$TMP/metrics.txt" ||
    fail "reshim metrics: no destination row"
promtool check metrics <"$TMP/metrics.txt" || fail "promtool check metrics"
pass "reshim metrics of pid $app: $(grep -c '^# TYPE' "$TMP/metrics.txt") families, promtool check metrics clean"
"$PY" "$ROOT/tests/ops/check_names.py" "$TMP/metrics.txt" "$OPS/prometheus/reshim-alerts.yml" \
    "$OPS/grafana/reshim-dashboard.json" "$TMP" || fail "names not emitted by reshim metrics"
pass "names, labels and values of the alerts and the dashboard are reshim's"
promtool check rules "$TMP/dashboard-rules.yml" >"$TMP/dash.out" 2>&1 || { cat "$TMP/dash.out"; fail "the dashboard's PromQL"; }
pass "the dashboard's queries parse (promtool check rules)"

# The check must fail on a name reshim does not emit.
printf 'groups:\n- name: x\n  rules:\n  - alert: X\n    expr: rate(reshim_no_such_total[5m]) > 0\n  - alert: Y\n    expr: reshim_memory_state{state="full"} == 1\n' >"$TMP/bad.yml"
if "$PY" "$ROOT/tests/ops/check_names.py" "$TMP/metrics.txt" "$TMP/bad.yml" \
    "$OPS/grafana/reshim-dashboard.json" "$TMP" 2>"$TMP/bad.err"; then
    fail "check_names.py accepted reshim_no_such_total"
fi
grep -q reshim_no_such_total "$TMP/bad.err" && grep -q 'state="full"' "$TMP/bad.err" ||
    fail "check_names.py: $(cat "$TMP/bad.err")"
pass "a made-up metric name and a made-up state are caught"
kill "$app" 2>/dev/null || true

echo "== the Kubernetes example"
"$PY" - "$OPS/kubernetes" "$TMP" <<'PYEOF' || fail "the Kubernetes example"
import glob, json, os, shlex, subprocess, sys
import yaml
kdir, tmp = sys.argv[1:3]
root = os.path.dirname(os.path.dirname(kdir))
docs = [(f, d) for f in sorted(glob.glob(kdir + "/*.yaml")) for d in yaml.safe_load_all(open(f)) if d]
json.dump([{"file": os.path.relpath(f, root), "doc": d} for f, d in docs], open(tmp + "/k8s.json", "w"))
by = {d["kind"]: d for f, d in docs}
def ok(msg): print("  ok:", msg)
def die(msg): print("  FAIL:", msg, file=sys.stderr); sys.exit(1)
for k in ("Deployment", "Service", "ServiceMonitor"):
    if k not in by: die(f"no {k}")
pod = by["Deployment"]["spec"]["template"]
spec = pod["spec"]
cs = {c["name"]: c for c in spec["containers"]}
app, side = cs.get("app"), cs.get("reshim-metrics")
if not app or not side: die("containers app and reshim-metrics expected")
# the app under reshim-run
cmd = app["command"]
if cmd[0] != "reshim-run" or "--" not in cmd or cmd.index("--") == len(cmd) - 1:
    die(f"app command {cmd}: expected reshim-run [OPTIONS] -- PROGRAM...")
helptext = subprocess.run([root + "/scripts/reshim-run", "--help"], capture_output=True, text=True).stdout
for o in cmd[1:cmd.index("--")]:
    if o.startswith("--") and o.split("=")[0] not in helptext: die(f"reshim-run has no option {o}")
ok(f"app: {' '.join(cmd)}")
# env names: every RESHIM_ variable is one reshim config knows
known = set(json.loads(subprocess.run([root + "/build/reshim", "config", "--json"],
            capture_output=True, text=True, check=True).stdout))
env = {c: {e["name"]: e.get("value") for e in cs[c].get("env", [])} for c in cs}
for c in cs:
    for n in env[c]:
        if n.startswith("RESHIM_") and n not in known: die(f"{c}: unknown variable {n}")
rd = env["app"].get("RESHIM_RUN_DIR")
if not rd or env["reshim-metrics"].get("RESHIM_RUN_DIR") != rd:
    die("RESHIM_RUN_DIR must be set, the same, in both containers")
# the run dir below an emptyDir mounted in both, not its root
vols = {v["name"]: v for v in spec["volumes"]}
def mount_of(c):
    for m in c.get("volumeMounts", []):
        if rd.startswith(m["mountPath"].rstrip("/") + "/"):
            return m
m1, m2 = mount_of(app), mount_of(side)
if not m1 or not m2 or m1["name"] != m2["name"] or m1["mountPath"] != m2["mountPath"]:
    die(f"{rd} must be below one volume mounted at the same path in both containers")
if "emptyDir" not in vols[m1["name"]]: die("the run directory's volume is not an emptyDir")
ok(f"RESHIM_RUN_DIR={rd}, below the emptyDir {m1['name']} at {m1['mountPath']} in both")
# same uid, a shared pid namespace
uid = lambda c: (c.get("securityContext") or {}).get("runAsUser", (spec.get("securityContext") or {}).get("runAsUser"))
if uid(app) is None or uid(app) != uid(side): die("app and sidecar must run as the same uid (runAsUser)")
if spec.get("shareProcessNamespace") is not True: die("shareProcessNamespace: true expected")
ok(f"same runAsUser ({uid(app)}), shareProcessNamespace")
# the sidecar: reshim serve --listen :PORT; the port, the Service, the scrape config
sc = side["command"] + side.get("args", [])
if sc[:2] != ["reshim", "serve"]: die(f"sidecar command {sc}: reshim serve expected")
listen = sc[sc.index("--listen") + 1]
host, _, port = listen.rpartition(":")
if host not in ("", "0.0.0.0", "[::]"): die(f"--listen {listen}: not reachable from outside the pod")
cport = {p["name"]: p["containerPort"] for p in side["ports"]}
if int(port) not in cport.values(): die(f"--listen {listen} is not a containerPort of the sidecar")
pname = [n for n, p in cport.items() if p == int(port)][0]
ann = pod["metadata"].get("annotations", {})
if ann.get("prometheus.io/port") != port or ann.get("prometheus.io/path") != "/metrics":
    die("prometheus.io/port and path annotations do not match the sidecar")
svc = {p["name"]: p for p in by["Service"]["spec"]["ports"]}
if pname not in svc or svc[pname]["targetPort"] not in (pname, int(port)):
    die(f"the Service has no port {pname} targeting the sidecar")
if by["Service"]["spec"]["selector"].items() - pod["metadata"]["labels"].items():
    die("the Service's selector does not select the pods")
ep = by["ServiceMonitor"]["spec"]["endpoints"][0]
if ep["port"] != pname or ep.get("path", "/metrics") != "/metrics": die("ServiceMonitor endpoint")
if by["ServiceMonitor"]["spec"]["selector"]["matchLabels"].items() - by["Service"]["metadata"]["labels"].items():
    die("the ServiceMonitor's selector does not select the Service")
probe = side.get("livenessProbe", {}).get("httpGet", {})
if probe and probe.get("port") not in (pname, int(port)): die("the probe's port")
ok(f"sidecar: {' '.join(sc)}; port {pname} {port} in the Service, the annotations and the ServiceMonitor")
# for the shell: the commands to run here, the emptyDir a temporary directory
local_rd = tmp + "/emptydir" + rd[len(m1["mountPath"].rstrip("/")):]
with open(tmp + "/k8s.sh", "w") as f:
    f.write(f"K8S_RUN_DIR={shlex.quote(local_rd)}\n")
    f.write(f"K8S_APP_ENV=({' '.join(shlex.quote(f'{k}={v}') for k, v in env['app'].items() if k != 'RESHIM_RUN_DIR')})\n")
    f.write(f"K8S_SIDE=({' '.join(shlex.quote(a) for a in sc[1:sc.index('--listen')])})\n")
    f.write(f"K8S_LISTEN_HOST={shlex.quote(host)}\n")
PYEOF
# shellcheck disable=SC1091
source "$TMP/k8s.sh"
mkdir -p "$TMP/emptydir" && chmod 1777 "$TMP/emptydir"
port=$(free_port)
spawn env "${K8S_APP_ENV[@]}" RESHIM_MEM_BUDGET=500M RESHIM_RUN_DIR="$K8S_RUN_DIR" \
    RESHIM_LIBRARY="$SHIM" "$ROOT/scripts/reshim-run" -- "$PY" -c "$APP" "$port" "$TMP/ready2"
app=$!
mport=$(free_port)
spawn env RESHIM_RUN_DIR="$K8S_RUN_DIR" "$RESHIM" "${K8S_SIDE[@]}" --listen "$K8S_LISTEN_HOST:$mport" 2>"$TMP/serve.err"
wait_until 15 test -S "$K8S_RUN_DIR/$app.sock" || fail "the app (under reshim-run) made no socket in $K8S_RUN_DIR"
wait_port "$mport" 15 || fail "reshim serve did not listen: $(cat "$TMP/serve.err")"
curl -fsS "http://127.0.0.1:$mport/metrics" >"$TMP/served.txt" || fail "GET /metrics"
grep -q "^reshim_info{pid=\"$app\"" "$TMP/served.txt" || fail "the sidecar's /metrics has no pid $app"
pass "the example's commands here: the sidecar serves the app's metrics (pid $app) from $K8S_RUN_DIR"

if RESHIM_K8S_MODULES="${RESHIM_K8S_MODULES:-$ROOT/build/ops-node/node_modules}" \
    node "$ROOT/tests/ops/k8s_validate.mjs" "$TMP/k8s.json" 2>"$TMP/k8s.err"; then
    pass "the Kubernetes objects validate against the API's schemas"
else
    rc=$?
    [ $rc = 77 ] || fail "Kubernetes schema: $(cat "$TMP/k8s.err")"
    echo "  note: schema validation left out: $(cat "$TMP/k8s.err"); make ops-k8s-deps installs them"
fi
