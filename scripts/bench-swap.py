#!/usr/bin/env python3
"""The swap scenario (issue 17, docs/kv.md): what the next turn of a long conversation
costs after its model was swapped out for another and back.

Two synthetic models, a memory budget with room for one. Per round, alternating the order:

  restore  a daemon with kv_keep on: the conversation on A, one request to B (A is evicted,
           its slots saved), then the next turn on A (A starts again, its slots restored)
  cold     the same with kv_keep off: A starts again and prefills the whole conversation
  warm     the next turn on A with A never unloaded (the floor)
  router   llama-server's own router mode (--models-dir, --models-max 1) doing the same swap

The measured number is the time from sending the next turn (non-streamed, max_tokens 1) to
its answer: the first (only) token, so it is the time to first token, model start included
for the swapped ones. llama-server's own timings (prompt_n, cache_n, prompt_ms) are kept
beside it. Medians and spreads (min-max) over the rounds; ratios against warm.

  scripts/bench-swap.py --corral build/release/bin/corral --rounds 5 --out bench/results/DIR
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def request(port, method, path, body=None, timeout=600):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    text = r.read().decode(errors="replace")
    conn.close()
    return r.status, text


class Daemon:
    def __init__(self, corral, root, models_dir, engine, kv_keep, budget, ctx, names):
        self.corral, self.root = corral, root
        self.env = dict(os.environ)
        for k, sub in (("XDG_RUNTIME_DIR", "run"), ("XDG_STATE_HOME", "state"), ("XDG_CONFIG_HOME", "config"),
                       ("XDG_DATA_HOME", "data"), ("HOME", "home"), ("CORRAL_CACHE_DIR", "cache")):
            self.env[k] = os.path.join(root, sub)
            os.makedirs(self.env[k], exist_ok=True)
        self.env["CORRAL_LLAMA_SERVER"] = engine
        self.env["CORRAL_LISTEN"] = "127.0.0.1:0"
        self.env["CORRAL_KV_KEEP"] = "true" if kv_keep else "false"
        os.makedirs(os.path.join(root, "config/corral"), exist_ok=True)
        with open(os.path.join(root, "config/corral/config.yaml"), "w") as f:
            f.write(f"model_paths: [{models_dir}]\nmodels:\n")
            for n in names:
                f.write(f"  {n}:\n    ctx: {ctx}\n")
        if budget:
            self.env["CORRAL_MEMORY_BUDGET"] = str(budget)
        self.port = 0

    def run(self, *args, check=True):
        r = subprocess.run([self.corral, *args], env=self.env, capture_output=True, text=True, timeout=600)
        if check and r.returncode != 0:
            raise RuntimeError(f"corral {' '.join(args)}: {r.stderr}")
        return r

    def start(self):
        self.run("daemon", "start")
        st = json.loads(self.run("status", "--json").stdout)
        self.port = int(st["proxy"]["base_url"].rsplit(":", 1)[1].split("/")[0])

    def stop(self):
        self.run("daemon", "stop", check=False)


def chat(port, model, messages, max_tokens):
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
    t0 = time.perf_counter()
    status, text = request(port, "POST", "/v1/chat/completions", body)
    ms = (time.perf_counter() - t0) * 1000
    if status != 200:
        raise RuntimeError(f"{model}: HTTP {status}: {text[:300]}")
    j = json.loads(text)
    return ms, j


def long_history(words):
    # Varied text (numbers and words), deterministic, roughly `words` words.
    vocab = ["river", "stone", "amber", "violet", "quartz", "meadow", "lantern", "harbor", "copper", "willow",
             "ember", "falcon", "granite", "juniper", "kettle", "marble", "nectar", "orchid", "pepper", "saffron"]
    out = []
    for i in range(words):
        out.append(vocab[(i * 7 + i // 13) % len(vocab)] if i % 5 else str(i))
    return " ".join(out)


def stats(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corral", default="build/release/bin/corral")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--words", type=int, default=3000, help="words in the conversation's first turn")
    ap.add_argument("--ctx", type=int, default=12288)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--no-router", action="store_true")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    corral = os.path.abspath(a.corral)
    engine_dir = subprocess.run(["scripts/engine.sh", "--print"], capture_output=True, text=True).stdout.strip()
    engine = os.path.join(engine_dir, "bin/llama-server")
    work = tempfile.mkdtemp(prefix="corral-swap-")
    models = os.path.join(work, "models")
    os.makedirs(models)
    for name, seed in (("swapa", 1), ("swapb", 2)):
        subprocess.run([corral, "model", "synth", "--out", f"{models}/{name}.gguf", "--force", "--preset", a.preset,
                        "--ctx", str(a.ctx), "--name", name, "--seed", str(seed)], check=True, capture_output=True)
    names = ["swapa", "swapb"]
    daemons = {}
    try:
        # Room for one model: the daemon's own estimate, times 1.5.
        probe = Daemon(corral, os.path.join(work, "probe"), models, engine, True, 0, a.ctx, names)
        probe.start()
        plan = json.loads(probe.run("start", "swapa", "--dry-run", "--json").stdout)["plan"]
        probe.stop()
        budget = int(plan["reserved_bytes"] * 1.5)
        slot_path = [x for x in plan["argv"] if "/kv/" in x]
        for mode, keep in (("on", True), ("off", False)):
            d = Daemon(corral, os.path.join(work, mode), models, engine, keep, budget, a.ctx, names)
            d.start()
            daemons[mode] = d
        router = None
        if not a.no_router:
            rport_file = os.path.join(work, "router.log")
            router = subprocess.Popen([engine, "--models-dir", models, "--models-max", "1", "--host", "127.0.0.1",
                                       "--port", "0", "-c", str(a.ctx)],
                                      stdout=open(rport_file, "w"), stderr=subprocess.STDOUT, start_new_session=True)
            rport = 0
            for _ in range(600):
                text = open(rport_file).read()
                if "listening on http://127.0.0.1:" in text:
                    rport = int(text.split("listening on http://127.0.0.1:")[1].split()[0].strip("/"))
                    break
                time.sleep(0.1)
            if rport == 0:
                print("router mode did not start; skipped", file=sys.stderr)
                router = None
        history = long_history(a.words)
        results = {m: [] for m in ("warm", "restore", "cold", "router")}
        detail = {m: [] for m in results}
        orders = [["restore", "cold", "warm", "router"], ["router", "warm", "cold", "restore"]]
        for r in range(a.rounds):
            for mode in orders[r % 2]:
                if mode == "router" and router is None:
                    continue
                port = rport if mode == "router" else daemons["off" if mode == "cold" else "on"].port
                model_a = "swapa.gguf" if mode == "router" else "swapa"
                model_b = "swapb.gguf" if mode == "router" else "swapb"
                if mode == "router":  # router mode names models by file stem or file: ask it
                    _, lst = request(port, "GET", "/v1/models")
                    ids = [m["id"] for m in json.loads(lst)["data"]]
                    model_a = next(i for i in ids if "swapa" in i)
                    model_b = next(i for i in ids if "swapb" in i)
                turn = f"round {r} {mode}: " + history
                msgs = [{"role": "user", "content": turn}]
                _, first = chat(port, model_a, msgs, 8)  # the conversation so far (cached in A's slot)
                reply = first["choices"][0]["message"].get("content") or ""
                msgs += [{"role": "assistant", "content": reply}, {"role": "user", "content": "and then?"}]
                if mode != "warm":
                    chat(port, model_b, [{"role": "user", "content": "hi"}], 1)  # A is swapped out
                ms, nxt = chat(port, model_a, msgs, 1)  # the next turn: time to its first token
                t = nxt.get("timings", {})
                results[mode].append(ms)
                detail[mode].append({"ms": ms, "prompt_n": t.get("prompt_n"), "cache_n": t.get("cache_n"),
                                     "prompt_ms": t.get("prompt_ms"), "first_prompt_n": first.get("timings", {}).get("prompt_n")})
                print(f"round {r} {mode:8s} ttft {ms:8.1f} ms  prompt_n {t.get('prompt_n')} cache_n {t.get('cache_n')}",
                      flush=True)
        summary = {m: stats(v) for m, v in results.items() if v}
        tokens = detail["warm"][0]["prompt_n"] + detail["warm"][0]["cache_n"] if detail["warm"] else None
        out = {"rounds": a.rounds, "conversation_tokens": tokens, "ctx": a.ctx, "preset": a.preset,
               "budget_bytes": budget, "slot_save_path_example": slot_path, "summary": summary, "detail": detail,
               "loadavg": open("/proc/loadavg").read().strip(), "nproc": os.cpu_count(),
               "command": " ".join(sys.argv)}
        kv_bytes = 0
        for root, _, files in os.walk(os.path.join(work, "on/state/corral/kv")):
            kv_bytes += sum(os.path.getsize(os.path.join(root, f)) for f in files)
        out["kv_state_bytes_on_disk"] = kv_bytes
        print(json.dumps(summary, indent=1))
        if a.out:
            os.makedirs(a.out, exist_ok=True)
            with open(os.path.join(a.out, "swap.json"), "w") as f:
                json.dump(out, f, indent=1)
    finally:
        for d in daemons.values():
            d.stop()
        if 'router' in dir() and router is not None:
            os.killpg(router.pid, 15)
            router.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
