#!/usr/bin/env python3
"""Run every Criterion suite listed in a tests.list and sum the results.

Each line of the list is `PATH WHERE INPUTS`: WHERE is `native` (run
here) or `kvm` (needs hardware KVM: run here when the host has it, else
inside one test-host boot). A suite that cannot run says why and counts as
skipped; it never counts as passed.
"""

import json
import shlex
import os
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)
sys.dont_write_bytecode = True
from configure import probe_kvm  # noqa: E402


def count_tests(path):
    r = subprocess.run([path, "--list"], capture_output=True, text=True)
    return sum(1 for l in r.stdout.splitlines() if l.startswith(("├", "└")))


def run_native(path, jobs):
    with tempfile.NamedTemporaryFile(suffix=".json") as rep:
        cmd = [path, "--json=" + rep.name, "-j%d" % jobs]
        rc = subprocess.run(cmd, stderr=subprocess.STDOUT).returncode
        res = load_report(rep.name)
    if res is None:
        print("tests: %s wrote no report (exit %d)" % (path, rc))
        return {"passed": 0, "failed": 1, "skipped": 0}
    if rc != 0 and res["failed"] == 0:
        print("tests: %s exited %d" % (path, rc))
        res["failed"] = 1
    return res


def report_skips(data):
    for suite in data.get("test_suites", []):
        for t in suite.get("tests", []):
            if t.get("status") == "SKIPPED":
                why = "; ".join(t.get("messages", [])) or "no reason given"
                print("[SKIP] %s::%s: %s" % (suite["name"], t["name"], why))


def load_report(path):
    """A Criterion JSON report as counts, or None when there is none."""
    try:
        # Criterion copies a guest's raw console text (with \r) into
        # failure messages without escaping it.
        with open(path) as f:
            data = json.load(f, strict=False)
    except (OSError, ValueError):
        return None
    report_skips(data)
    return {"passed": data["passed"],
            "failed": data["failed"] + data["errored"],
            "skipped": data["skipped"]}


def boot_testhost(tool, paths, reps):
    """One test-host boot running every suite; its exit status."""
    script = "".join(
        "echo 'tests: running %s (test host)'; "
        "%s --json=%s -j1 --verbose; " % (
            p, shlex.quote(os.path.abspath(p)), shlex.quote(r))
        for p, r in zip(paths, reps))
    cmd = [tool, "--share", TOP, "--timeout", "600", "--",
           "/bin/sh", "-c", script]
    return subprocess.run(cmd, stderr=subprocess.STDOUT).returncode


def run_in_testhost(paths):
    """Run every kvm suite inside one test-host boot, one after another;
    returns their counts in order, or None and why the host is missing.
    A host that did not come up at all (exit 125, no report) is booted
    once more: no suite ran, so none is called flaky for it."""
    tool = os.path.join(os.path.dirname(paths[0]), "..", "bin",
                        "vmpool-testhost")
    if not os.path.exists(tool):
        return None, "the test host tool was not built"
    with tempfile.TemporaryDirectory(dir=TOP) as d:
        reps = [os.path.join(d, "%d.json" % i) for i in range(len(paths))]
        rc = boot_testhost(tool, paths, reps)
        if rc == 125 and not any(os.path.exists(r) for r in reps):
            print("tests: the test host did not come up (exit 125); "
                  "booting it once more", flush=True)
            rc = boot_testhost(tool, paths, reps)
        results = []
        for p, r in zip(paths, reps):
            res = load_report(r)
            if res is None:
                print("tests: %s returned no report from the test host "
                      "(exit %d)" % (p, rc))
                res = {"passed": 0, "failed": 1, "skipped": 0}
            results.append(res)
    return results, None


def rerun_failed_once(paths, results):
    """A guest on our VMM still dies now and then under load (a known,
    open fault); a suite that failed gets one more test-host boot, and
    the log says so loudly either way."""
    failed = [i for i, r in enumerate(results) if r["failed"]]
    if not failed:
        return results
    again, _ = run_in_testhost([paths[i] for i in failed])
    for i, res in zip(failed, again or []):
        if res["failed"]:
            print("tests: %s failed in the test host, and again in a "
                  "second boot" % paths[i], flush=True)
        else:
            print("tests: FLAKY: %s failed in the test host, then passed "
                  "in a second boot (the first failure is logged above)"
                  % paths[i], flush=True)
        results[i] = res
    return results


def run_kvm_suites(paths, kvm):
    """Suites needing hardware KVM: here when the host has it, else in
    the test host; a host with neither skips them, saying why."""
    if kvm == "hardware":
        return [run_native(p, 1) for p in paths]
    if kvm == "pvm" or kvm == "unknown":
        results, why = run_in_testhost(paths)
    else:
        results, why = None, "no /dev/kvm on this host"
    if results is not None:
        return rerun_failed_once(paths, results)
    out = []
    for p in paths:
        print("[SKIP] %s: %s" % (p, why))
        out.append({"passed": 0, "failed": 0, "skipped": count_tests(p)})
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: run.py TESTS.LIST")
    os.environ.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.join(
        TOP, "tests", "lsan.supp"))
    kvm = probe_kvm()
    total = {"passed": 0, "failed": 0, "skipped": 0}
    with open(sys.argv[1]) as f:
        entries = [l.split() for l in f if l.strip()]
    results = []
    for path, where, _ in entries:
        if where == "native":
            print("tests: running %s" % path, flush=True)
            results.append(run_native(path, os.cpu_count() or 2))
    kvm_paths = [p for p, w, _ in entries if w == "kvm"]
    if kvm_paths:
        results += run_kvm_suites(kvm_paths, kvm)
    for res in results:
        for k in total:
            total[k] += res[k]
    print("tests: %d passed, %d failed, %d skipped" % (
        total["passed"], total["failed"], total["skipped"]), flush=True)
    sys.exit(1 if total["failed"] else 0)


if __name__ == "__main__":
    main()
