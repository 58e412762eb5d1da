#!/usr/bin/env python3
"""Cuts a fuzz target's corpus down to what is committed: at most N files and B bytes.

    cargo +nightly fuzz cmin TARGET                 # first: libFuzzer's own minimisation
    python3 fuzz/select-corpus.py TARGET [--files 60] [--bytes 110000]

`cargo fuzz cmin` keeps every input that adds a coverage feature, which after a 10-minute
run is still 1,500+ files and 2-3 MB per target. This script asks the target's libFuzzer
binary for every input's features (`-set_cover_merge=1 -use_counters=0`, which records
each input's full feature set in the merge control file), then picks greedily the input
with the most new features per byte (size + 4 KiB, so large inputs are not all skipped)
until the file or byte budget is reached, and replaces fuzz/corpus/TARGET with the pick.
It prints the share of the corpus's features the pick keeps. Build the targets first
(`cargo +nightly fuzz build`).
"""
import argparse
import os
import pathlib
import shutil
import subprocess
import tempfile

FUZZ = pathlib.Path(__file__).resolve().parent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--bytes", type=int, default=110_000)
    parser.add_argument("--size-bias", type=int, default=4096)
    args = parser.parse_args()

    corpus = FUZZ / "corpus" / args.target
    binary = FUZZ / "target" / "x86_64-unknown-linux-gnu" / "release" / args.target
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        control = scratch / "control"
        (scratch / "out").mkdir()
        subprocess.run(
            [binary, "-set_cover_merge=1", "-use_counters=0", f"-merge_control_file={control}",
             "-rss_limit_mb=2048", "-max_len=65536", scratch / "out", corpus],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        lines = control.read_text(encoding="latin-1").split("\n")
        count = int(lines[0])
        files = lines[2 : 2 + count]
        features = {}
        for line in lines[2 + count :]:
            parts = line.split()
            if parts and parts[0] == "FT":
                features[int(parts[1])] = set(map(int, parts[2:]))
        everything = set().union(*features.values())
        sizes = {i: os.path.getsize(files[i]) for i in features}

        covered, chosen, total = set(), [], 0
        while len(chosen) < args.files:
            candidates = [
                i for i in features
                if i not in chosen and total + sizes[i] <= args.bytes and features[i] - covered
            ]
            if not candidates:
                break
            best = max(
                candidates,
                key=lambda i: (len(features[i] - covered) / (sizes[i] + args.size_bias), -i),
            )
            chosen.append(best)
            covered |= features[best]
            total += sizes[best]

        keep = scratch / "keep"
        keep.mkdir()
        for i in chosen:
            shutil.copy(files[i], keep)
        before = len(list(corpus.iterdir()))
        shutil.rmtree(corpus)
        shutil.copytree(keep, corpus)
    print(
        f"{args.target}: kept {len(chosen)} of {before} inputs, {total} bytes, "
        f"{len(covered)}/{len(everything)} features ({len(covered) / len(everything):.1%})"
    )


if __name__ == "__main__":
    main()
