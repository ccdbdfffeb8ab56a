#!/usr/bin/env python3
"""The exported symbols of each shared library equal the functions its public headers declare.

usage: check_exports.py LIB.so HEADER... [-- LIB.so HEADER...]...

For each library: the functions declared by its headers (every declaration must carry AGX_API)
are compared with `nm -D --defined-only` of the library. Any extra export (an internal that
leaked) or missing one (a declared function the library does not export) fails, and both counts
are printed. Declarations are read from the header text: top-level statements with a parameter
list, outside typedefs, structs and macros."""
import re
import subprocess
import sys


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def declarations(path):
    """(name, has AGX_API) of every function a header declares."""
    text = strip_comments(open(path, encoding="utf-8").read())
    lines = []
    for line in text.split("\n"):  # drop preprocessor lines, joining continuations
        if lines and lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1] + " " + line
            continue
        lines.append(line)
    code = "\n".join(l for l in lines if not l.lstrip().startswith("#"))
    code = code.replace('extern "C" {', " ")
    out, depth, stmt = [], 0, ""
    for ch in code:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(depth - 1, 0)
            stmt = ""
            continue
        if depth:
            continue
        if ch == ";":
            s = " ".join(stmt.split())
            stmt = ""
            if not s or s.startswith("typedef") or s.startswith("static") or "(" not in s:
                continue
            head = re.sub(r"__attribute__\s*\(\(.*?\)\)", " ", s)
            m = re.match(r"^(.*?)\b([A-Za-z_]\w*)\s*\(", head)
            if not m or "(*" in head[: m.end()]:
                continue
            out.append((m.group(2), "AGX_API" in m.group(1)))
        else:
            stmt += ch
    return out


def exports(lib):
    res = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True,
                         check=True)
    syms = set()
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TtWwDdBbRrVvi":
            syms.add(parts[2].split("@")[0])
    return syms


def main(argv):
    groups, cur = [], []
    for a in argv:
        if a == "--":
            groups.append(cur)
            cur = []
        else:
            cur.append(a)
    groups.append(cur)
    failed = False
    for g in groups:
        lib, headers = g[0], g[1:]
        declared, unmarked = set(), []
        for h in headers:
            for name, marked in declarations(h):
                declared.add(name)
                if not marked:
                    unmarked.append("%s (%s)" % (name, h))
        have = exports(lib)
        extra, missing = sorted(have - declared), sorted(declared - have)
        print("%s: %d exported, %d declared by %d public headers" %
              (lib, len(have), len(declared), len(headers)))
        for name in extra:
            print("  exported but not declared by a public header: %s" % name)
        for name in missing:
            print("  declared but not exported: %s" % name)
        for name in unmarked:
            print("  declared without AGX_API: %s" % name)
        failed |= bool(extra or missing or unmarked)
    if failed:
        print("FAIL: the exports must equal the public API (mark declarations AGX_API, keep "
              "internals out of include/agentix)")
        return 1
    print("OK: exports == public API")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
