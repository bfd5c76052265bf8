#!/usr/bin/env python3
"""Suite A, first version: is a llama-server started by `corral start` as fast as the same
argv started by hand?

1. Starts MODEL with `corral start` (own temporary XDG dirs, so its own daemon).
2. Starts the same binary by hand with the argv read from the Corral child's
   /proc/<pid>/cmdline (only the port differs in practice: both ask for --port 0).
3. Asserts the two cmdlines are byte for byte equal.
4. Alternates requests A, B, B, A, ... (warm-up first), each a non-streamed /completion with a
   fixed prompt and n_predict, and reads llama-server's own timings (predicted_per_second:
   decode tokens/s, prompt_ms) plus the client's wall time to the full answer.
5. Prints medians and the B/A ratio. Numbers, not assertions: the machine is shared.

Usage: suite_a.py CORRAL_BINARY [--preset tiny] [--rounds 30] [--n-predict 128] [-- raw args]
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def post(port, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as res:
        data = json.loads(res.read())
    return data, (time.perf_counter() - t0) * 1000.0


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corral")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--n-predict", type=int, default=128)
    ap.add_argument("raw", nargs="*")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="corral-suite-a.")
    env = dict(os.environ)
    for k in ("RUNTIME", "STATE", "CONFIG", "DATA"):
        env[f"XDG_{k}_HOME" if k != "RUNTIME" else "XDG_RUNTIME_DIR"] = os.path.join(tmp, k.lower())
    corral = os.path.abspath(a.corral)
    model = os.path.join(tmp, "model.gguf")
    subprocess.run([corral, "model", "synth", "--preset", a.preset, "--out", model], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    hand = None
    try:
        out = subprocess.run([corral, "start", model, "--json", "--"] + a.raw, check=True, env=env,
                             capture_output=True, text=True).stdout
        m = json.loads(out)["model"]
        a_pid, a_port, argv = m["pid"], m["port"], m["argv"]
        a_cmd = cmdline(a_pid)

        log = open(os.path.join(tmp, "hand.log"), "wb")
        hand = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=os.environ)
        b_port = 0
        deadline = time.time() + 120
        while time.time() < deadline and b_port == 0:
            text = open(os.path.join(tmp, "hand.log"), errors="replace").read()
            mm = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
            if mm:
                b_port = int(mm.group(1))
            elif hand.poll() is not None:
                sys.exit("hand-started llama-server exited:\n" + text[-2000:])
            else:
                time.sleep(0.01)
        b_cmd = cmdline(hand.pid)
        same = a_cmd == b_cmd
        print(f"argv: {' '.join(argv)}")
        print(f"cmdline byte-identical: {same} ({len(a_cmd)} bytes)")
        if not same:
            print(f"  corral: {a_cmd!r}\n  hand:   {b_cmd!r}")

        body = {"prompt": "Once upon a time, in a small village by the sea,", "n_predict": a.n_predict,
                "temperature": 0, "cache_prompt": False, "ignore_eos": True}
        res = {"A": {"tps": [], "prompt_ms": [], "wall_ms": []}, "B": {"tps": [], "prompt_ms": [], "wall_ms": []}}
        ports = {"A": a_port, "B": b_port}
        for _ in range(a.warmup):
            for k in "AB":
                post(ports[k], "/completion", body)
        for i in range(a.rounds):
            order = "AB" if i % 2 == 0 else "BA"
            for k in order:
                data, wall = post(ports[k], "/completion", body)
                t = data["timings"]
                res[k]["tps"].append(t["predicted_per_second"])
                res[k]["prompt_ms"].append(t["prompt_ms"])
                res[k]["wall_ms"].append(wall)
        print(f"{a.rounds} alternating rounds, n_predict={a.n_predict}, preset={a.preset} (A = corral start, B = by hand)")
        for metric, unit in (("tps", "decode tok/s"), ("prompt_ms", "prompt ms"), ("wall_ms", "client wall ms")):
            ma = statistics.median(res["A"][metric])
            mb = statistics.median(res["B"][metric])
            print(f"  {unit:15s} median A {ma:10.2f}   B {mb:10.2f}   A/B {ma / mb:.4f}")
    finally:
        if hand is not None:
            os.killpg(hand.pid, signal.SIGKILL)
            hand.wait()
        subprocess.run([corral, "daemon", "stop"], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
