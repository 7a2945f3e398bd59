#!/bin/sh
# verbatim-repeats.sh lists the places outside tests that repeat six or more
# lines to the letter, as `duplicates` (the session tool library's
# code-repeat finder, which must be on PATH) finds them, with two
# differences that make its whole-tree count usable as a criterion:
#
#   - The lines inside Go's parenthesized import blocks are passed over.
#     duplicates passes over import lines by design, but it reads
#     `"encoding/json"` inside `import ( … )` as a string, so any two files
#     that import the same six standard packages in gofmt's order count as
#     a repeat. Each block is rewritten, line for line, as single-line
#     imports, so line numbers stay those of the tree.
#   - The tree is read in parts (every union of two of four groups of
#     packages, so every pair of files is read together once), because one
#     call lists at most 200 rows and most rows are same-shape ones.
#
# Test files and testdata are left out. Usage: scripts/verbatim-repeats.sh
# (from the repository's root). Prints one row per pair and the count.
set -eu
command -v duplicates >/dev/null || { echo "verbatim-repeats: duplicates is not on PATH" >&2; exit 1; }
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$root" "$work" <<'EOF'
import itertools, os, re, shutil, subprocess, sys

root, work = sys.argv[1], sys.argv[2]
files = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout.split()
files = [f for f in files if not f.endswith("_test.go") and "/testdata/" not in f]

def unblock(text):
    """Rewrites import ( ... ) as single import lines, keeping line count."""
    def rep(m):
        lines = m.group(0).split("\n")
        out = [""]
        for line in lines[1:-1]:
            s = line.strip()
            out.append("import " + s if s and not s.startswith("//") else s)
        return "\n".join(out + [""])
    return re.sub(r"^import \(\n.*?\n\)$", rep, text, count=1, flags=re.S | re.M)

def unit(f):
    parts = f.split("/")
    return "/".join(parts[:2]) if parts[0] == "node" and len(parts) > 2 else parts[0]

units = {}
for f in files:
    units.setdefault(unit(f), []).append(f)
size = {u: sum(os.path.getsize(os.path.join(root, f)) for f in fs) for u, fs in units.items()}
groups = [[0, []] for _ in range(4)]
for u in sorted(units, key=lambda u: -size[u]):
    g = min(groups, key=lambda g: g[0])
    g[0] += size[u]
    g[1].append(u)

rows = set()
for a, b in itertools.combinations(range(len(groups)), 2):
    part = os.path.join(work, f"{a}{b}")
    for u in groups[a][1] + groups[b][1]:
        for f in units[u]:
            dst = os.path.join(part, f)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            src = os.path.join(root, f)
            if f.endswith(".go"):
                with open(src, encoding="utf-8", errors="surrogateescape") as r, \
                     open(dst, "w", encoding="utf-8", errors="surrogateescape") as w:
                    w.write(unblock(r.read()))
            else:
                shutil.copy(src, dst)
    out = subprocess.run(["duplicates", "--repo", part, "--most", "200", "--seconds", "300"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("(+") and "more pairs" in line:
            sys.exit(f"verbatim-repeats: part {a}{b} has more rows than one call lists: {line}")
        if line.startswith("incomplete:"):
            sys.exit(f"verbatim-repeats: part {a}{b}: {line}")
        if line.startswith("D") and " shape" not in line:
            rows.add(" ".join(line.split()[1:4]))
for r in sorted(rows):
    print(r)
print(f"{len(rows)} verbatim pairs outside tests")
EOF
