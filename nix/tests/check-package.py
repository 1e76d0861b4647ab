#!/usr/bin/env python3
"""Checks the buildRustPackage arguments recorded by the stub nixpkgs
(JSON on stdin). usage: check-package.py REPO"""
import json
import os
import sys
import tomllib

args = json.load(sys.stdin)
errors = []
if not args["lockFile"].endswith("Cargo.lock"):
    errors.append("cargoLock.lockFile is %r" % args["lockFile"])
if args["cargoBuildFlags"] != ["--package", "opentracker"]:
    errors.append("cargoBuildFlags %r" % args["cargoBuildFlags"])
# Cargo needs every workspace member and every bench, test and example
# directory the manifest may refer to.
with open(os.path.join(sys.argv[1], "Cargo.toml"), "rb") as f:
    manifest = tomllib.load(f)
needed = {"Cargo.toml", "Cargo.lock", "src", "packaging"}
needed |= {m.split("/")[0] for m in manifest.get("workspace", {}).get("members", []) if m != "."}
needed |= {d for d in ("benches", "tests", "examples") if os.path.isdir(os.path.join(sys.argv[1], d))}
for f in sorted(needed):
    if f not in args["srcFiles"]:
        errors.append("source lacks %s" % f)
for f in ("debian", "docker", "target", ".git", "nix", "flake.nix"):
    if f in args["srcFiles"]:
        errors.append("source includes %s" % f)
for page in ("opentracker.1", "opentracker.toml.5"):
    if page not in args["postInstall"]:
        errors.append("man page %s not installed" % page)
print("\n".join(errors) if errors else "pname %s, version %s, source %s" % (args["pname"], args["version"], " ".join(args["srcFiles"])))
sys.exit(1 if errors else 0)
