#!/usr/bin/env python3
"""No program or plugin holds a second copy of a shared library's global state.

usage: check_single_state.py LIBDIR OWNER.so=ARCHIVE.a[,ARCHIVE.a…] … -- DIR…

A library's state lives in the objects of its support archives that define data (the plugin
registry, the owner registry, curl's init, the value hash seed, …). Every ELF object under the
DIRs that depends on OWNER.so (DT_NEEDED, followed through LIBDIR) must not contain one of those
objects itself: it would then hold a private registry beside the library's. Objects are told by
the source file names the assembler records (FILE symbols)."""
import os
import subprocess
import sys

DATA_TYPES = set("bBdDvV")


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True).stdout


def state_sources(archive):
    srcs = set()
    for line in run("nm", "-A", "--defined-only", archive).splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[-2] in DATA_TYPES:
            member = parts[0].split(":")[1]  # archive.a:member.c.o:
            srcs.add(member[:-2] if member.endswith(".o") else member)
    return srcs


def file_symbols(path):
    out = set()
    for line in run("readelf", "-s", "--wide", path).splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[3] == "FILE":
            out.add(os.path.basename(parts[7]))
    return out


def needed(path):
    out = []
    for line in run("readelf", "-d", path).splitlines():
        if "(NEEDED)" in line and "[" in line:
            out.append(line.split("[", 1)[1].rstrip("]"))
    return out


def depends_on(path, soname_prefix, libdir, seen=None):
    seen = seen or set()
    for n in needed(path):
        if n.startswith(soname_prefix + ".so"):
            return True
        dep = os.path.join(libdir, n)
        if n not in seen and os.path.exists(dep):
            seen.add(n)
            if depends_on(dep, soname_prefix, libdir, seen):
                return True
    return False


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def main(argv):
    sep = argv.index("--")
    libdir, owners, dirs = argv[0], argv[1:sep], argv[sep + 1:]
    failed, checked = False, 0
    for spec in owners:
        lib, archives = spec.split("=", 1)
        prefix = os.path.basename(lib).split(".so")[0]
        state = set()
        for a in archives.split(","):
            state |= state_sources(a)
        print("%s: state in %s" % (prefix, ", ".join(sorted(state))))
        for d in dirs:
            for root, _, files in os.walk(d):
                for f in files:
                    p = os.path.join(root, f)
                    if os.path.realpath(p) == os.path.realpath(lib) or not is_elf(p):
                        continue
                    if f.endswith(".o") or f.endswith(".a") or os.path.islink(p):
                        continue
                    if not depends_on(p, prefix, libdir):
                        continue
                    checked += 1
                    copies = state & file_symbols(p)
                    if copies:
                        failed = True
                        print("  %s loads %s and holds its own copy of %s" %
                              (p, prefix, ", ".join(sorted(copies))))
    print("%d programs and plugins that load the libraries checked" % checked)
    if failed:
        print("FAIL: link the shared library, or only the support libraries without its state")
        return 1
    print("OK: one copy of each library's state per process")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
