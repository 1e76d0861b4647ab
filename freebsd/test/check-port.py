#!/usr/bin/env python3
"""Static checks of the FreeBSD port skeleton (no ports tree here).

usage: check-port.py REPO [--write DIR]
--write DIR writes DIR/Makefile.crates (CARGO_CRATES from Cargo.lock): run it
when copying freebsd/ into a ports tree (`make cargo-crates` there does the
same). It is not kept in this repository, where Cargo.lock changes often."""
import os
import re
import sys
import tomllib

CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"


def lock_crates(repo):
    with open(os.path.join(repo, "Cargo.lock"), "rb") as f:
        lock = tomllib.load(f)
    return sorted("%s-%s" % (p["name"], p["version"])
                  for p in lock.get("package", []) if p.get("source") == CRATES_IO)


def render(crates):
    lines = ["# Generated from Cargo.lock by freebsd/test/check-port.py --write",
             "CARGO_CRATES=\t" + (" \\\n\t\t".join(crates) if crates else "")]
    return "\n".join(lines) + "\n"


def main():
    repo = sys.argv[1]
    port = os.path.join(repo, "freebsd")
    crates = lock_crates(repo)
    if "--write" in sys.argv:
        crates_file = os.path.join(sys.argv[sys.argv.index("--write") + 1], "Makefile.crates")
        with open(crates_file, "w") as f:
            f.write(render(crates))
        print("wrote %s (%d crates)" % (crates_file, len(crates)))
        return 0
    errors = []
    if not crates:
        errors.append("no crates.io packages found in Cargo.lock")
    makefile = open(os.path.join(port, "Makefile")).read()
    rc = re.search(r"^USE_RC_SUBR=\s*(\S+)", makefile, re.M)
    if not rc or not os.path.exists(os.path.join(port, "files", rc.group(1) + ".in")):
        errors.append("USE_RC_SUBR names no files/NAME.in")
    if not re.search(r"^USES=.*\bcargo\b", makefile, re.M):
        errors.append("USES lacks cargo")
    # Files the Makefile copies out of the source tree must exist there.
    for src in re.findall(r"\$\{WRKSRC\}/(\S+)", makefile):
        if not os.path.exists(os.path.join(repo, src)):
            errors.append("Makefile installs %s, which is not in the tree" % src)
    # Each pkg-plist entry must be something the port installs.
    installed = {"bin/opentracker"}  # cargo install of the crate's binary
    for src, dest in re.findall(r"\$\{INSTALL_\w+\} \$\{WRKSRC\}/(\S+) \$\{STAGEDIR\}(\S+)", makefile):
        dest = dest.replace("${PREFIX}/", "").replace("${ETCDIR}", "%%ETCDIR%%")
        if dest.endswith("/"):
            dest += os.path.basename(src)
        if "/man/man" in dest:
            dest += ".gz"  # the framework compresses man pages
        installed.add(dest)
    plist = [l.strip() for l in open(os.path.join(port, "pkg-plist")) if l.strip()]
    for entry in plist:
        path = entry.split()[-1]
        if path not in installed:
            errors.append("pkg-plist lists %s, which nothing installs" % path)
    for path in installed:
        if not any(e.split()[-1] == path for e in plist):
            errors.append("%s is installed but not in pkg-plist" % path)
    for n, line in enumerate(open(os.path.join(port, "pkg-descr")), 1):
        if len(line.rstrip("\n")) > 80:
            errors.append("pkg-descr:%d is longer than 80 columns" % n)
    for e in errors:
        print(e)
    if not errors:
        print("%d crates for Makefile.crates; pkg-plist = %s" % (len(crates), " ".join(sorted(installed))))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
