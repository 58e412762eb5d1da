#!/usr/bin/env python3
"""Writes the seed inputs for each fuzz target from tests/fixtures and policy/requirements.yaml.

    python3 fuzz/make-seeds.py OUTDIR      # then: cargo +nightly fuzz cmin TARGET OUTDIR/TARGET

The committed corpora (fuzz/corpus/<target>/) are these seeds plus what fuzzing found,
minimised with `cargo fuzz cmin`; this script is only needed to rebuild them from scratch.
Inputs are written compact (no whitespace) to keep the corpora small.
"""
import hashlib
import json
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
CHECKS = [
    "run-as-non-root", "drop-capabilities", "resource-limits", "prometheus-annotations",
    "no-privilege-escalation", "no-privileged", "read-only-root-filesystem", "seccomp-profile",
    "host-namespaces", "image-tag-pinned", "health-probes",
]


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def write(outdir, target, data):
    directory = outdir / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main():
    outdir = pathlib.Path(sys.argv[1])
    settings_docs = [{}, {"checks": {c: {"mode": "mutate"} for c in CHECKS}}]
    for case in sorted(FIXTURES.iterdir()):
        review_file = case / "review.json"
        if not review_file.is_file():
            continue
        review = json.loads(review_file.read_text())
        settings_file = case / "settings.json"
        settings = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
        write(outdir, "admission_review", compact(review))
        write(outdir, "policy_validate", compact({"request": review["request"], "settings": settings}))
        if settings_file.is_file():
            settings_docs.append(settings)
    requirements = yaml.safe_load((ROOT / "policy" / "requirements.yaml").read_text())
    settings_docs.append(requirements)
    settings_docs += [
        {"checks": {"run-as-non-root": {"mode": "mutate", "defaultRunAsUser": 1000}}},
        {"checks": {"prometheus-annotations": {"mode": "mutate", "defaultPort": 9090,
                                               "portNames": ["metrics"], "defaultPath": "/m"}}},
        {"checks": {"resource-limits": {"mode": "mutate", "requireExplicitRequests": True,
                                        "exemptInitContainers": True,
                                        "required": ["limits.cpu", "requests.ephemeral-storage"],
                                        "defaults": {"limits.cpu": "1", "requests.ephemeral-storage": "1Gi"},
                                        "maximum": {"limits.cpu": "2"},
                                        "maxLimitRequestRatio": {"cpu": "4"}}}},
        {"checks": {"drop-capabilities": {"mode": "warn", "allowedAdd": ["CAP_NET_RAW", "sys_time"]}}},
        {"checks": {"health-probes": {"mode": False}}},
        {"checks": {c: {"mode": "off" if c in ("prometheus-annotations", "no-privileged", "host-namespaces",
                                               "image-tag-pinned", "health-probes") else "mutate"}
                    for c in CHECKS}},
        {"exemptions": {"namespaces": [], "images": ["registry.k8s.io/*", "ghcr.io/?rg/[a-z]*:v1"]}},
    ]
    for settings in settings_docs:
        write(outdir, "settings", compact(settings))


if __name__ == "__main__":
    main()
