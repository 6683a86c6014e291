#!/usr/bin/env python3
"""check_names.py METRICS RULES DASHBOARD OUTDIR: every metric name in the
alert rules' and the dashboard's PromQL is one `reshim metrics` emitted
(METRICS: its output), every label they group or match by is one of that
metric's labels (or job/instance, added by the scrape), and every label
value they match exactly (state="over", dir="out", op="connect") is one it
gave. Writes OUTDIR/dashboard-rules.yml: the dashboard's queries as
recording rules, for `promtool check rules` to parse them."""
import json, re, sys
import yaml

metrics_file, rules_file, dash_file, outdir = sys.argv[1:5]
labels, values = {}, {}
for line in open(metrics_file):
    m = re.match(r'^(reshim_[a-z0-9_]+)\{(.*)\} ', line)
    if not m:
        continue
    for k, v in re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(2)):
        labels.setdefault(m.group(1), set()).add(k)
        values.setdefault((m.group(1), k), set()).add(v)
SCRAPE = {"job", "instance"}
errors = []

def check(where, expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: m.group(0).replace('(', ' ').replace(')', ' '), expr)
    names = set(re.findall(r'\breshim_[a-z0-9_]+', e))
    for n in names:
        if n not in labels:
            errors.append(f"{where}: {n} is not in the output of reshim metrics")
    known = set().union(*(labels.get(n, set()) for n in names)) | SCRAPE
    for grp in re.findall(r'\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)', e):
        for l in filter(None, (x.strip() for x in grp.split(','))):
            if l not in known:
                errors.append(f"{where}: label {l} (by/on) is on none of {sorted(names)}")
    for n, body in re.findall(r'\b(reshim_[a-z0-9_]+)\{([^}]*)\}', expr):
        for l, op, v in re.findall(r'([a-z_]+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', body):
            if l not in labels.get(n, set()) | SCRAPE:
                errors.append(f"{where}: {n} has no label {l}")
            elif op in ('=', '!=') and l not in SCRAPE and v not in values.get((n, l), set()):
                errors.append(f"{where}: {n}{{{l}=\"{v}\"}}: no such value in reshim metrics "
                              f"(it gave {sorted(values.get((n, l), set()))})")
    return names

used = set()
rules = yaml.safe_load(open(rules_file))
nalerts = 0
for g in rules["groups"]:
    for r in g["rules"]:
        used |= check(f"{rules_file}: {r.get('alert') or r.get('record')}", r["expr"])
        nalerts += 1
dash = json.load(open(dash_file))
exprs = []
def walk(p):
    for t in p.get("targets", []):
        exprs.append((p.get("title", "?"), t["expr"]))
    for q in p.get("panels", []):
        walk(q)
for p in dash["panels"]:
    walk(p)
for v in dash["templating"]["list"]:
    q = v.get("query")
    if v["type"] == "query":
        exprs.append((f"variable {v['name']}", q["query"] if isinstance(q, dict) else q))
for title, e in exprs:
    used |= check(f"{dash_file}: {title}", e)
# The dashboard's queries as recording rules: promtool parses them.
subst = lambda e: e.replace("$__rate_interval", "5m").replace("$job", ".*").replace(
    "$comm", ".*").replace("$pid", ".*")
rec = [{"record": f"dashboard:query:{i}", "expr": subst(e)} for i, (t, e) in enumerate(exprs)
       if not e.startswith("label_values(")]
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rec}]},
               open(f"{outdir}/dashboard-rules.yml", "w"))
for e in errors:
    print("  FAIL:", e, file=sys.stderr)
if not errors:
    print(f"  {nalerts} alert rules and {len(exprs)} dashboard queries use {len(used)} metric "
      f"names, all in the output of reshim metrics ({len(labels)} families)")
sys.exit(1 if errors else 0)
