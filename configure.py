#!/usr/bin/env python3
"""Probe the host and write build.ninja and config.h for vmpool.

Each source folder declares its targets in a `targets.py` holding a
function `targets(b)`; `b` is the Build object below. Standard library
only, so a fresh Debian machine can run it before anything is installed.
"""

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.abspath(__file__))
VERSION = "0.1.0"

# Debian (bookworm) packages vmpool needs to build, test and run.
PACKAGES = [
    "gcc", "libc6-dev", "pkg-config", "ninja-build", "python3",
    "liburing-dev", "libcriterion-dev", "busybox-static", "cpio",
    "linux-source-6.1", "flex", "bison", "bc", "libelf-dev",
    "libssl-dev", "make", "xz-utils", "qemu-system-x86", "bubblewrap",
    "libjson-c-dev",
]

# Folders holding a targets.py, in dependency order.
MODULES = ["common", "shm", "proto", "guest", "kvm", "worker",
           "supervisor", "client", "tools", "tests"]


def log(msg):
    print("configure: " + msg, flush=True)


def install_packages():
    """Install missing Debian packages (needs root)."""
    missing = [p for p in PACKAGES if not package_installed(p)]
    if not missing:
        log("all packages present")
        return
    log("installing: " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.check_call(sudo + ["apt-get", "update", "-q"], env=env)
    subprocess.check_call(sudo + ["apt-get", "install", "-y", "-q",
                                  "--no-install-recommends"] + missing,
                          env=env)


def package_installed(name):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name],
                       capture_output=True, text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


def compiles(cc, code, flags):
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "t.c")
        with open(src, "w") as f:
            f.write(code)
        cmd = [cc, src, "-o", os.path.join(d, "t")] + flags
        return subprocess.run(cmd, capture_output=True).returncode == 0


def probe_kvm():
    """Say what kind of KVM this host has: hardware, pvm or none."""
    if not os.path.exists("/dev/kvm"):
        return "none"
    if os.path.exists("/sys/module/kvm_pvm"):
        return "pvm"
    for m in ("kvm_intel", "kvm_amd"):
        if os.path.exists("/sys/module/" + m):
            return "hardware"
    return "unknown"


def probe(cc):
    found = {}
    found["cc"] = compiles(cc, "int main(void){return 0;}\n", [])
    found["liburing"] = compiles(
        cc, "#include <liburing.h>\nint main(void){struct io_uring r;"
        "return io_uring_queue_init(2,&r,0);}\n", ["-luring"])
    found["criterion"] = compiles(
        cc, "#include <criterion/criterion.h>\nTest(a,b){}\n",
        ["-lcriterion"])
    found["kvm"] = probe_kvm()
    return found


def ninja_escape(s):
    return s.replace("$", "$$").replace(" ", "$ ").replace(":", "$:")


class Build:
    """Collects targets from each folder's targets.py."""

    def __init__(self, builddir, cflags, ldflags, sanitize, kvm):
        self.builddir = builddir
        self.cflags = cflags
        self.ldflags = ldflags
        self.sanitize = sanitize
        self.kvm = kvm
        self.top = TOP
        self.lines = []
        self.defaults = []
        self.tests = []
        self.objs_seen = set()
        self.cache = os.environ.get("VMPOOL_CACHE") or os.path.join(
            os.environ.get("XDG_CACHE_HOME")
            or os.path.expanduser("~/.cache"), "vmpool")

    def out(self, path):
        return os.path.join(self.builddir, path)

    def lib_path(self, name):
        return self.out("lib/lib%s.a" % name)

    def _objs(self, srcs, cflags, static):
        objs = []
        for src in srcs:
            sub = "obj-static" if static else "obj"
            obj = self.out("%s/%s.o" % (sub, os.path.splitext(src)[0]))
            if obj not in self.objs_seen:
                self.objs_seen.add(obj)
                rule = "cc_static" if static else "cc"
                self.lines.append("build %s: %s %s" % (obj, rule, src))
                if cflags:
                    self.lines.append("  extra = " + " ".join(cflags))
            objs.append(obj)
        return objs

    def library(self, name, srcs, cflags=(), static_too=False):
        """A static library; static_too also builds it unsanitized for
        fully static programs (the guest agent)."""
        objs = self._objs(srcs, cflags, False)
        path = self.lib_path(name)
        self.lines.append("build %s: ar %s" % (path, " ".join(objs)))
        self.defaults.append(path)
        if static_too:
            sobjs = self._objs(srcs, cflags, True)
            spath = self.out("lib-static/lib%s.a" % name)
            self.lines.append("build %s: ar %s" % (spath, " ".join(sobjs)))
            self.defaults.append(spath)
        return path

    def program(self, name, srcs, deps=(), libs=(), cflags=(),
                static=False, subdir="bin"):
        """An executable; deps are vmpool library names, libs are -l."""
        objs = self._objs(srcs, cflags, static)
        libdir = "lib-static" if static else "lib"
        dlibs = [self.out("%s/lib%s.a" % (libdir, d)) for d in deps]
        path = self.out("%s/%s" % (subdir, name))
        rule = "link_static" if static else "link"
        self.lines.append("build %s: %s %s %s" % (
            path, rule, " ".join(objs), " ".join(dlibs)))
        if libs:
            self.lines.append("  libs = " + " ".join("-l" + l for l in libs))
        self.defaults.append(path)
        return path

    def test(self, name, srcs, deps=(), libs=(), cflags=(), where="native",
             inputs=()):
        """A Criterion suite. where: native, or kvm (runs on a host with
        hardware KVM: directly, or inside the test host)."""
        path = self.program(name, srcs, deps, list(libs) + ["criterion"],
                            cflags, subdir="tests")
        self.tests.append((path, where, list(inputs)))
        return path

    def custom(self, outputs, inputs, command, description, pool=None,
               implicit=(), phony_default=True):
        """A build step running a command; $in and $out work."""
        rule = "r_" + hashlib.sha1(
            (" ".join(outputs)).encode()).hexdigest()[:10]
        self.lines.append("rule %s" % rule)
        self.lines.append("  command = %s" % command)
        self.lines.append("  description = %s" % description)
        if pool:
            self.lines.append("  pool = %s" % pool)
        imp = (" | " + " ".join(implicit)) if implicit else ""
        self.lines.append("build %s: %s %s%s" % (
            " ".join(outputs), rule, " ".join(inputs), imp))
        if phony_default:
            self.defaults.extend(outputs)
        return outputs


def write_config_h(path, args, found):
    lines = [
        "/* Generated by configure.py: what the build found. */",
        "#ifndef VMPOOL_CONFIG_H",
        "#define VMPOOL_CONFIG_H",
        '#define VMPOOL_VERSION "%s"' % VERSION,
        '#define VMPOOL_BUILD_KVM "%s"' % found["kvm"],
        "#define VMPOOL_FAULT_POINTS %d" % (0 if args.no_fault_points else 1),
        "#define VMPOOL_SANITIZE %d" % (1 if args.sanitize else 0),
        '#define VMPOOL_CACHE_DIR "%s"' % args.cache,
        "#endif",
        "",
    ]
    write_if_changed(path, "\n".join(lines))


def write_if_changed(path, text):
    try:
        with open(path) as f:
            if f.read() == text:
                return
    except OSError:
        pass
    with open(path, "w") as f:
        f.write(text)


def header(b, args, cc):
    warn = "-Wall -Wextra -Wno-unused-parameter -Wshadow -Wformat=2"
    base = "-std=gnu11 -D_GNU_SOURCE -g -O2 -pthread %s -I. -I%s" % (
        warn, b.builddir)
    san = " -fsanitize=address,undefined -fno-omit-frame-pointer" \
        " -fno-sanitize-recover=undefined" if args.sanitize else ""
    if args.werror:
        base += " -Werror"
    conf = [a for a in sys.argv[1:] if a != "--install-deps"]
    return [
        "# Generated by configure.py; edit targets.py files instead.",
        "ninja_required_version = 1.10",
        "builddir = %s" % b.builddir,
        "cc = %s" % cc,
        "cflags = %s%s" % (base, san),
        "cflags_static = %s" % base,
        "ldflags = -pthread%s" % san,
        "",
        "rule cc",
        "  command = $cc -MMD -MF $out.d $cflags $extra -c $in -o $out",
        "  depfile = $out.d",
        "  deps = gcc",
        "  description = CC $out",
        "rule cc_static",
        "  command = $cc -MMD -MF $out.d $cflags_static $extra -c $in -o $out",
        "  depfile = $out.d",
        "  deps = gcc",
        "  description = CC $out",
        "rule ar",
        "  command = rm -f $out && ar rcs $out $in",
        "  description = AR $out",
        "rule link",
        "  command = $cc -o $out $in $ldflags $libs",
        "  description = LINK $out",
        "rule link_static",
        "  command = $cc -static -pthread -o $out $in $libs",
        "  description = LINK $out",
        "rule configure",
        "  command = python3 configure.py %s" % " ".join(
            shlex.quote(a) for a in conf),
        "  generator = 1",
        "  description = CONFIGURE",
        "rule run_check",
        "  command = python3 configure.py --sanitize --builddir build-asan"
        " && ninja -f build-asan/build.ninja test",
        "  pool = console",
        "  description = TEST (sanitizers)",
        "rule run_tests",
        "  command = python3 tests/run.py $in",
        "  pool = console",
        "  description = TEST",
        "",
    ]


def footer(b, ninja_file, args):
    mods = [os.path.join(m, "targets.py") for m in MODULES
            if os.path.exists(os.path.join(TOP, m, "targets.py"))]
    lines = [
        "",
        "build %s: configure | configure.py %s" % (
            ninja_file, " ".join(mods)),
        "",
    ]
    manifest = b.out("tests.list")
    write_if_changed(manifest, "".join(
        "%s %s %s\n" % (p, w, ",".join(i) or "-") for p, w, i in b.tests))
    deps = [p for p, _, _ in b.tests] + \
        [i for _, _, ins in b.tests for i in ins]
    # Tests may use any program built here (the test host, the daemon).
    lines.append("build test: run_tests %s | %s" % (
        manifest, " ".join(sorted(set(deps + b.defaults)))))
    if ninja_file == "build.ninja":
        lines.append("build check: run_check | test")
    lines.append("build all: phony " + " ".join(b.defaults))
    lines.append("default all")
    return lines


def load_targets(b):
    for m in MODULES:
        path = os.path.join(TOP, m, "targets.py")
        if not os.path.exists(path):
            continue
        ns = {"__file__": path}
        with open(path) as f:
            exec(compile(f.read(), path, "exec"), ns)
        ns["targets"](b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--install-deps", action="store_true",
                    help="apt-get install the Debian packages vmpool needs")
    ap.add_argument("--builddir", default="build",
                    help="output folder (default: build); build.ninja goes "
                    "at the top for 'build', else into the folder")
    ap.add_argument("--sanitize", action="store_true",
                    help="build with AddressSanitizer and UBSan")
    ap.add_argument("--no-fault-points", action="store_true",
                    help="compile the fault-injection points out")
    ap.add_argument("--werror", action="store_true",
                    help="treat warnings as errors")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    ap.add_argument("--cache", default=None,
                    help="cache for slow outputs such as the guest kernel "
                    "(default: $VMPOOL_CACHE or ~/.cache/vmpool)")
    args = ap.parse_args()

    os.chdir(TOP)
    if args.install_deps:
        install_packages()
    found = probe(args.cc)
    for k in ("cc", "liburing", "criterion"):
        if not found[k]:
            sys.exit("configure: %s not usable; run with --install-deps"
                     % k)
    log("host KVM: %s" % found["kvm"])

    os.makedirs(args.builddir, exist_ok=True)
    b = Build(args.builddir, [], [], args.sanitize, found["kvm"])
    if args.cache:
        b.cache = os.path.abspath(args.cache)
    args.cache = b.cache
    write_config_h(b.out("config.h"), args, found)
    load_targets(b)

    ninja_file = "build.ninja" if args.builddir == "build" else \
        os.path.join(args.builddir, "build.ninja")
    text = "\n".join(header(b, args, args.cc) + b.lines +
                     footer(b, ninja_file, args)) + "\n"
    # Always rewritten: ninja needs it newer than its inputs.
    with open(ninja_file, "w") as f:
        f.write(text)
    log("wrote %s (%d tests)" % (ninja_file, len(b.tests)))


if __name__ == "__main__":
    main()
