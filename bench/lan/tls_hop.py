#!/usr/bin/env python3
"""The cost of TLS and API keys on the proxy hop (issue 13), measured against one proxy and
one llama-server child: plain HTTP without a key vs TLS with resumed sessions vs plain HTTP
with a key check, alternated request by request in one run (same child, same prompt).

Not yet suite C of `corral bench` (its client speaks plain HTTP only): a stand-in with the
same shape (one fresh connection per stream, TTFT from the request's last byte to the first
SSE data byte, decode rate from the first to the last token), plus the TLS handshake cost per
new connection (full and resumed) and the proxy's RSS with 1000 idle connections of each kind.

usage: tls_hop.py --plain http://127.0.0.1:P --tls https://127.0.0.1:Q --ca ca.pem --key crl_...
                  --keyed http://127.0.0.1:R --model NAME --pid PROXY_PID [--rounds 30]
Prints a JSON report on stdout.
"""
import argparse, json, os, socket, ssl, statistics, time, urllib.parse


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def connect(url, ctx, session=None):
    u = urllib.parse.urlparse(url)
    t0 = time.perf_counter()
    s = socket.create_connection((u.hostname, u.port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t1 = time.perf_counter()
    if u.scheme == "https":
        s = ctx.wrap_socket(s, server_hostname="localhost", session=session)
    t2 = time.perf_counter()
    return s, (t1 - t0) * 1e3, (t2 - t1) * 1e3


def stream(url, ctx, model, key, tokens, session=None):
    s, connect_ms, handshake_ms = connect(url, ctx, session)
    body = json.dumps({"model": model, "stream": True, "max_tokens": tokens, "temperature": 0,
                       "messages": [{"role": "user", "content": "Count from one to fifty."}]}).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n" + (f"Authorization: Bearer {key}\r\n" if key else "") + "\r\n").encode()
    s.sendall(head + body)
    sent = time.perf_counter()
    first = last = None
    n = 0
    buf = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        now = time.perf_counter()
        buf += d
        c = d.count(b"data: {")
        if c and first is None:
            first = now
        if c:
            n += c
            last = now
        if b"data: [DONE]" in buf[-64:] or buf.endswith(b"0\r\n\r\n"):
            break
    sess = s.session if isinstance(s, ssl.SSLSocket) else None
    reused = s.session_reused if isinstance(s, ssl.SSLSocket) else None
    s.close()
    if first is None:
        raise RuntimeError("no SSE data from " + url + ": " + buf[:300].decode(errors="replace"))
    ttft = (first - sent) * 1e3
    rate = (n - 1) / (last - first) if n > 1 and last > first else 0.0
    return {"ttft_ms": ttft, "tok_s": rate, "handshake_ms": handshake_ms, "session": sess, "reused": reused}


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(xs):
    return {"p50": round(pct(xs, 50), 3), "p99": round(pct(xs, 99), 3), "n": len(xs)}


def idle(url, ctx, count, pid):
    before = rss(pid)
    held = []
    for _ in range(count):
        s, _, _ = connect(url, ctx)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        s.recv(4096)
        held.append(s)
    time.sleep(0.5)
    after = rss(pid)
    for s in held:
        s.close()
    return {"connections": count, "rss_before": before, "rss_after": after,
            "bytes_per_connection": round((after - before) / count)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plain"); ap.add_argument("--tls"); ap.add_argument("--keyed")
    ap.add_argument("--ca"); ap.add_argument("--key"); ap.add_argument("--model")
    ap.add_argument("--pid", type=int); ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--tokens", type=int, default=32); ap.add_argument("--idle", type=int, default=1000)
    a = ap.parse_args()
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.check_hostname = True
    arms = {"plain": [], "tls_resumed": [], "key_check": []}
    session = None
    for _ in range(3):  # warm-up, and a first session ticket
        r = stream(a.tls, ctx, a.model, a.key, 8)
        session = r["session"]
        stream(a.plain, ctx, a.model, None, 8)
    reused = 0
    for i in range(a.rounds):
        order = ["plain", "tls_resumed", "key_check"]
        order = order[i % 3:] + order[:i % 3]  # rotate who goes first
        for arm in order:
            if arm == "plain":
                r = stream(a.plain, ctx, a.model, None, a.tokens)
            elif arm == "tls_resumed":
                r = stream(a.tls, ctx, a.model, a.key, a.tokens, session)
                reused += 1 if r["reused"] else 0
                session = r["session"] or session
            else:
                r = stream(a.keyed, ctx, a.model, a.key, a.tokens)
            arms[arm].append(r)
    # Handshake cost per new connection: full vs resumed, on the TLS listener (GET /health).
    full, resumed = [], []
    for _ in range(50):
        s, _, h = connect(a.tls, ctx); s.close(); full.append(h)
        s, _, h = connect(a.tls, ctx, session); s.close(); resumed.append(h)
    out = {"rounds": a.rounds, "tokens": a.tokens, "tls_sessions_resumed": f"{reused}/{a.rounds}", "arms": {}}
    base_ttft = statistics.median(r["ttft_ms"] for r in arms["plain"])
    base_rate = statistics.median(r["tok_s"] for r in arms["plain"])
    for arm, rs in arms.items():
        t = [r["ttft_ms"] for r in rs]
        rate = [r["tok_s"] for r in rs]
        out["arms"][arm] = {"ttft_ms": summary(t), "tok_s_p50": round(statistics.median(rate), 2),
                            "ttft_p50_minus_plain_ms": round(statistics.median(t) - base_ttft, 3),
                            "decode_ratio_vs_plain": round(statistics.median(rate) / base_rate, 4) if base_rate else None}
    out["handshake_ms"] = {"full": summary(full), "resumed": summary(resumed)}
    if a.pid:
        out["idle_plain"] = idle(a.plain, ctx, a.idle, a.pid)
        out["idle_tls"] = idle(a.tls, ctx, a.idle, a.pid)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
