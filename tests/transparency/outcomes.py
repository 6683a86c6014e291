#!/usr/bin/python3
"""outcomes.py: the per-test bookkeeping of tests/transparency/cpython.sh.

  outcomes.py extract JUNIT.xml OUT.json
      Reads the JUnit XML that `python3 -m test --junit-xml` wrote and writes
      {test id: outcome}, outcome one of ok, fail, error, skip, xfail, xpass.
      A missing or unreadable file gives {} (the run crashed or timed out:
      every test of the other side then shows as "absent" here).

  outcomes.py diff A.json B.json IDS.txt
      Writes the ids whose outcomes differ between A and B (one a line, for
      `python3 -m test --matchfile`), prints how many.

  outcomes.py report WORKDIR MODULE...
      Prints the table and the differences, decides, and exits 1 when a test
      differs for real. WORKDIR/MODULE/ holds, per round r (1 = the whole
      module, 2.. = retries of the tests that differed), without.r.json,
      with.r.json and the times in time.without.r, time.with.r, the shim's
      log lines in shimlog.r.

A test that differs in round 1 is retried (both sides) in later rounds.
It is *flaky* when its outcome without the shim is not stable (it changed
between the rounds without the shim): such a test says nothing about the
shim. Otherwise it is a *difference* when it differed in at least two
rounds (e.g. failing with the shim in both the run and the retry, passing
without in both; or failing with the shim in two of three rounds), or when
there was no retry to ask. A test that differed in round 1 only and was the
same in every retry is listed as *once*, not counted: the retries, not a
rule about timing, decide.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET


def extract(xml_path, out_path):
    res = {}
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError):
        root = None
    if root is not None:
        for tc in root.iter("testcase"):
            name = tc.get("name", "")
            # regrtest writes the full id as the name; a bare name is
            # qualified with its class.
            tid = name if "." in name else (tc.get("classname", "") + "." + name)
            tags = {c.tag for c in tc}
            result = tc.get("result", "")
            if "error" in tags:
                o = "error"
            elif "failure" in tags:
                o = "fail"
            elif "skipped" in tags or result == "skipped" or tc.get("status") == "skipped":
                o = "skip"
            elif result == "expectedFailure" or "expectedFailure" in tags:
                o = "xfail"
            elif result == "unexpectedSuccess" or "unexpectedSuccess" in tags:
                o = "xpass"
            else:
                o = "ok"
            # A test run more than once (subTests are not separate entries)
            # keeps its worst outcome.
            if tid in res and rank(res[tid]) >= rank(o):
                continue
            res[tid] = o
    with open(out_path, "w") as f:
        json.dump(res, f, indent=0, sort_keys=True)


def rank(o):
    return {"ok": 0, "skip": 1, "xfail": 1, "xpass": 2, "fail": 3, "error": 4}.get(o, 5)


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def differing(a, b):
    return sorted(t for t in set(a) | set(b) if a.get(t, "absent") != b.get(t, "absent"))


def diff(a_path, b_path, ids_path):
    a, b = load(a_path) or {}, load(b_path) or {}
    d = differing(a, b)
    with open(ids_path, "w") as f:
        for t in d:
            f.write(t + "\n")
    print(len(d))


def read_num(path):
    try:
        with open(path) as f:
            return float(f.read().strip())
    except (OSError, ValueError):
        return None


def counts(res):
    ok = sum(1 for o in res.values() if o in ("ok", "xfail"))
    bad = sum(1 for o in res.values() if o in ("fail", "error", "xpass"))
    skip = sum(1 for o in res.values() if o == "skip")
    return "%d/%d/%d" % (ok, bad, skip)


def report(work, modules):
    rows = []
    differences = []  # (module, id, [without outcomes], [with outcomes])
    flaky = []
    once = []
    crashed = []
    shimlog_lines = {}
    for mod in modules:
        d = os.path.join(work, mod)
        wo1 = load(os.path.join(d, "without.1.json"))
        wi1 = load(os.path.join(d, "with.1.json"))
        if not wo1:
            crashed.append((mod, "without"))
        if not wi1:
            crashed.append((mod, "with"))
        wo1, wi1 = wo1 or {}, wi1 or {}
        ids = set(wo1) | set(wi1)
        d1 = differing(wo1, wi1)
        rounds = 1
        while os.path.exists(os.path.join(d, "without.%d.json" % (rounds + 1))):
            rounds += 1
        mod_diff = 0
        for t in d1:
            wo = [wo1.get(t, "absent")]
            wi = [wi1.get(t, "absent")]
            for r in range(2, rounds + 1):
                a = (load(os.path.join(d, "without.%d.json" % r)) or {}).get(t, "absent")
                b = (load(os.path.join(d, "with.%d.json" % r)) or {}).get(t, "absent")
                if a == b == "absent":
                    continue  # the retry did not select it (no data, not a verdict)
                wo.append(a)
                wi.append(b)
            nd = sum(1 for a, b in zip(wo, wi) if a != b)
            if len(set(wo)) > 1:
                flaky.append((mod, t, wo, wi))
            elif nd == 1 and len(wo) > 1:
                once.append((mod, t, wo, wi))
            else:
                differences.append((mod, t, wo, wi))
                mod_diff += 1
        n = 0
        for r in range(1, rounds + 1):
            try:
                with open(os.path.join(d, "shimlog.%d" % r)) as f:
                    n += sum(1 for _ in f)
            except OSError:
                pass
        shimlog_lines[mod] = n
        tw = read_num(os.path.join(d, "time.without.1"))
        ti = read_num(os.path.join(d, "time.with.1"))
        rows.append((mod, len(ids), len(ids) - len(d1), len(d1), mod_diff, counts(wo1), counts(wi1),
                     "%.1f" % tw if tw is not None else "-", "%.1f" % ti if ti is not None else "-",
                     str(n)))

    head = ("module", "tests", "same", "differ", "real", "ok/fail/skip without",
            "ok/fail/skip with", "s without", "s with", "shim log")
    tot = ("total", sum(r[1] for r in rows), sum(r[2] for r in rows), sum(r[3] for r in rows),
           sum(r[4] for r in rows), "", "",
           "%.1f" % sum(float(r[7]) for r in rows if r[7] != "-"),
           "%.1f" % sum(float(r[8]) for r in rows if r[8] != "-"),
           sum(int(r[9]) for r in rows))
    table = [head] + rows + [tot]
    table = [tuple(str(c) for c in r) for r in table]
    w = [max(len(r[i]) for r in table) for i in range(len(head))]
    for i, r in enumerate(table):
        print("| " + " | ".join(c.ljust(w[j]) if j == 0 else c.rjust(w[j])
                                for j, c in enumerate(r)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    print("(differ: outcomes not the same in the first run; real: of those, the ones whose"
          " outcome without the shim stayed the same in every retry and differed with it"
          " again in a retry; shim log: lines the shim wrote at RESHIM_LOG=warn)")
    for mod, side in crashed:
        print("NO RESULTS: %s %s the shim (crash or timeout; see its log)" % (mod, side))
    if flaky:
        print("\nflaky (outcome changed between runs without the shim; not counted):")
        for mod, t, wo, wi in flaky:
            print("  %s: without %s, with %s" % (t, ",".join(wo), ",".join(wi)))
    if once:
        print("\nonce (differed in the first run only, the same in every retry; without the"
              " shim always the same; not counted):")
        for mod, t, wo, wi in once:
            print("  %s: without %s, with %s" % (t, ",".join(wo), ",".join(wi)))
    if differences:
        print("\nDIFFERENCES (runs without the shim agree with each other, not with the shim):")
        for mod, t, wo, wi in differences:
            print("  %s: without %s, with %s" % (t, ",".join(wo), ",".join(wi)))
    bad = bool(differences) or bool(crashed)
    print("\nresult: %s" % ("DIFFERENT" if bad else "same outcomes"))
    return 1 if bad else 0


def main(argv):
    if len(argv) >= 4 and argv[1] == "extract":
        extract(argv[2], argv[3])
        return 0
    if len(argv) >= 5 and argv[1] == "diff":
        diff(argv[2], argv[3], argv[4])
        return 0
    if len(argv) >= 4 and argv[1] == "report":
        return report(argv[2], argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
