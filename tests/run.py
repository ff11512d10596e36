#!/usr/bin/env python3
"""Run every Criterion suite listed in a tests.list and sum the results.

Each line of the list is `PATH WHERE INPUTS`: WHERE is `native` (run
here) or `kvm` (needs hardware KVM: run here when the host has it, else
inside the test host). A suite that cannot run says why and counts as
skipped; it never counts as passed.
"""

import json
import os
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def host_kvm():
    if not os.path.exists("/dev/kvm"):
        return "none"
    if os.path.exists("/sys/module/kvm_pvm"):
        return "pvm"
    for m in ("kvm_intel", "kvm_amd"):
        if os.path.exists("/sys/module/" + m):
            return "hardware"
    return "unknown"


def count_tests(path):
    r = subprocess.run([path, "--list"], capture_output=True, text=True)
    return sum(1 for l in r.stdout.splitlines() if l.startswith(("├", "└")))


def run_native(path, jobs):
    with tempfile.NamedTemporaryFile(suffix=".json") as rep:
        cmd = [path, "--json=" + rep.name, "-j%d" % jobs]
        rc = subprocess.run(cmd, stderr=subprocess.STDOUT).returncode
        try:
            with open(rep.name) as f:
                data = json.load(f)
        except (OSError, ValueError):
            print("tests: %s wrote no report (exit %d)" % (path, rc))
            return {"passed": 0, "failed": 1, "skipped": 0}
    res = {"passed": data["passed"],
           "failed": data["failed"] + data["errored"],
           "skipped": data["skipped"]}
    if rc != 0 and res["failed"] == 0:
        print("tests: %s exited %d" % (path, rc))
        res["failed"] = 1
    report_skips(data)
    return res


def report_skips(data):
    for suite in data.get("test_suites", []):
        for t in suite.get("tests", []):
            if t.get("status") == "SKIPPED":
                why = "; ".join(t.get("messages", [])) or "no reason given"
                print("[SKIP] %s::%s: %s" % (suite["name"], t["name"], why))


def run_in_testhost(path, inputs):
    """Run a kvm suite inside the test host; its JSON comes back."""
    tool = os.path.join(os.path.dirname(path), "..", "bin", "vmpool-testhost")
    if not os.path.exists(tool):
        return None, "the test host tool was not built"
    with tempfile.TemporaryDirectory(dir=TOP) as d:
        rep = os.path.join(d, "report.json")
        cmd = [tool, "--share", TOP, "--", os.path.abspath(path),
               "--json=" + rep]
        rc = subprocess.run(cmd, stderr=subprocess.STDOUT).returncode
        try:
            # Criterion copies a guest's raw console text (with \r) into
            # failure messages without escaping it.
            with open(rep) as f:
                data = json.load(f, strict=False)
        except (OSError, ValueError):
            return {"passed": 0, "failed": 1, "skipped": 0}, \
                "the test host returned no report (exit %d)" % rc
    report_skips(data)
    return {"passed": data["passed"],
            "failed": data["failed"] + data["errored"],
            "skipped": data["skipped"]}, None


def run_suite(path, where, inputs, kvm):
    print("tests: running %s" % path, flush=True)
    if where == "native":
        return run_native(path, os.cpu_count() or 2)
    if kvm == "hardware":
        return run_native(path, 1)
    res, why = run_in_testhost(path, inputs)
    if res is None:
        n = count_tests(path)
        print("[SKIP] %s: %s" % (path, why))
        return {"passed": 0, "failed": 0, "skipped": n}
    return res


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: run.py TESTS.LIST")
    kvm = host_kvm()
    total = {"passed": 0, "failed": 0, "skipped": 0}
    with open(sys.argv[1]) as f:
        entries = [l.split() for l in f if l.strip()]
    for path, where, inputs in entries:
        res = run_suite(path, where, inputs.split(","), kvm)
        for k in total:
            total[k] += res[k]
    print("tests: %d passed, %d failed, %d skipped" % (
        total["passed"], total["failed"], total["skipped"]), flush=True)
    sys.exit(1 if total["failed"] else 0)


if __name__ == "__main__":
    main()
