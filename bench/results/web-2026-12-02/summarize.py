#!/usr/bin/env python3
"""Prints the suite C hop summary of every raw/c_<cond>_<i>.json as a Markdown table."""
import glob, json, os, re, sys
here = os.path.dirname(os.path.abspath(__file__))
print("| run | workload | added TTFT p50 ms | added TTFT p99 ms | paired decode ratio [95% CI] | errors |")
print("|---|---|---|---|---|---|")
for path in sorted(glob.glob(os.path.join(sys.argv[1] if len(sys.argv) > 1 else here + "/raw", "c_*.json"))):
    run = re.sub(r"^c_|\.json$", "", os.path.basename(path))
    try:
        d = json.load(open(path))
    except ValueError:
        print(f"| {run} | (no result: stopped) | | | | |")
        continue
    for s in d.get("suites", []):
        for h in s.get("hop_summary", []):
            r = h["paired_decode_ratio"]
            print(f"| {run} | {h['workload']} | {h['added_ttft_p50_ms']:.2f} | {h['added_ttft_p99_ms']:.2f} | "
                  f"{r['estimate']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] | {h['errors']} |")
