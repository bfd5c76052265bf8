#!/usr/bin/env python3
"""A scripted fake of the Hugging Face hub's HTTP API, for `corral pull` tests (no internet).

Two servers in one process, so a download crosses hosts as on the real hub:
  hub  http://localhost:HUB   /api/models/{o}/{r}/revision/{rev}
                              /api/models/{o}/{r}/tree/{rev}?recursive=true  (LFS sha256, paginated)
                              /api/models?search=NAME
                              /{o}/{r}/resolve/{rev}/{path}  -> 302 to the CDN, with X-Repo-Commit,
                                                               X-Linked-Etag, X-Linked-Size, ETag
  cdn  http://127.0.0.1:CDN   /blobs/{sha256}  (Range, 206, Content-Range)

Repos are directories ROOT/OWNER/NAME/ (files below are the repo's files). A repo whose name
contains "gated" answers 401 (X-Error-Code: GatedRepo) unless `Authorization: Bearer TOKEN`.

Faults (flags): --cut-after N (the CDN closes the connection after N bytes of a body, the first
--cut-times times), --stall-after N (sends N bytes, then nothing), --wrong-sha (the listing's
sha256 of every file is wrong), --fill-disk PATH:N (after N body bytes, fills the filesystem of
PATH with a file until it is full, then goes on sending), --ignore-range, --page-size N.

Prints "HUB_PORT CDN_PORT" on one line when both listen. Every request is logged to --log as
one JSON line (server, method, path, range, authorization present or not).
Test-only code; python3 stdlib.
"""
import argparse
import hashlib
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
CUTS_DONE = [0]
FILLED = [False]


def log(entry):
    if not ARGS.log:
        return
    with LOCK, open(ARGS.log, "a") as f:
        f.write(json.dumps(entry) + "\n")


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_SHA_CACHE = {}


def repo_files(repo_dir):
    out = []
    for base, _dirs, files in os.walk(repo_dir):
        for name in sorted(files):
            full = os.path.join(base, name)
            rel = os.path.relpath(full, repo_dir)
            st = os.stat(full)
            key = (full, st.st_mtime_ns, st.st_size)
            if key not in _SHA_CACHE:
                _SHA_CACHE[key] = sha256_of(full)
            out.append((rel, st.st_size, _SHA_CACHE[key], full))
    return sorted(out)


def commit_of(repo):
    return hashlib.sha1(("commit:" + repo).encode()).hexdigest()


def shown_sha(sha):
    if ARGS.wrong_sha:
        return hashlib.sha256(("wrong" + sha).encode()).hexdigest()
    return sha


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_name_tag = "hub"

    def log_message(self, *a):  # quiet
        pass

    def send_json(self, code, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, error_code, message):
        self.send_json(code, {"error": message}, {"X-Error-Code": error_code, "X-Error-Message": message})

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        log({"server": self.server_name_tag, "method": self.command, "path": url.path,
             "range": self.headers.get("Range"), "auth": self.headers.get("Authorization") is not None,
             "host": self.headers.get("Host")})
        if self.server_name_tag == "cdn":
            return self.cdn(url)
        return self.hub(url)

    def repo_dir(self, owner, name):
        d = os.path.join(ARGS.root, owner, name)
        return d if os.path.isdir(d) else None

    def authorized(self, name):
        if "gated" not in name:
            return True
        return self.headers.get("Authorization") == "Bearer " + (ARGS.token or "\0")

    def hub(self, url):
        path = urllib.parse.unquote(url.path)
        query = urllib.parse.parse_qs(url.query)
        if path == "/api/models":
            term = query.get("search", [""])[0]
            hits = []
            for owner in sorted(os.listdir(ARGS.root)):
                for name in sorted(os.listdir(os.path.join(ARGS.root, owner))):
                    if term.lower()[:4] in name.lower():
                        hits.append({"id": owner + "/" + name})
            return self.send_json(200, hits[:5])
        m = re.match(r"^/api/models/([^/]+)/([^/]+)/(revision|tree)/(.+)$", path)
        if m:
            owner, name, kind, rev = m.groups()
            repo = self.repo_dir(owner, name)
            if repo is None:
                return self.error(404, "RepoNotFound", "Repository not found")
            if not self.authorized(name):
                return self.error(401, "GatedRepo", "Access to model %s/%s is restricted" % (owner, name))
            commit = commit_of(owner + "/" + name)
            if rev not in ("main", commit):
                return self.error(404, "RevisionNotFound", "Invalid rev id: " + rev)
            files = repo_files(repo)
            if kind == "revision":
                return self.send_json(200, {"id": owner + "/" + name, "sha": commit,
                                            "gated": "manual" if "gated" in name else False,
                                            "siblings": [{"rfilename": f[0]} for f in files]})
            entries = []
            dirs = set()
            for rel, size, sha, _full in files:
                parts = rel.split("/")
                for k in range(1, len(parts)):
                    d = "/".join(parts[:k])
                    if d not in dirs:
                        dirs.add(d)
                        entries.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": d})
                entries.append({"type": "file", "oid": hashlib.sha1(rel.encode()).hexdigest(), "size": size,
                                "path": rel, "lfs": {"oid": shown_sha(sha), "size": size, "pointerSize": 134}})
            start = int(query.get("cursor", ["0"])[0])
            page = entries[start:start + ARGS.page_size]
            headers = {}
            if start + ARGS.page_size < len(entries):
                nxt = "http://localhost:%d/api/models/%s/%s/tree/%s?recursive=true&cursor=%d" % (
                    self.server.server_port, owner, name, rev, start + ARGS.page_size)
                headers["Link"] = '<%s>; rel="next"' % nxt
            return self.send_json(200, page, headers)
        m = re.match(r"^/([^/]+)/([^/]+)/resolve/([^/]+)/(.+)$", path)
        if m:
            owner, name, rev, rel = m.groups()
            repo = self.repo_dir(owner, name)
            if repo is None:
                return self.error(404, "RepoNotFound", "Repository not found")
            if not self.authorized(name):
                return self.error(401, "GatedRepo", "Access to model %s/%s is restricted" % (owner, name))
            for frel, size, sha, _full in repo_files(repo):
                if frel == rel:
                    self.send_response(302)
                    self.send_header("Location", "http://127.0.0.1:%d/blobs/%s" % (ARGS.cdn_port, sha))
                    self.send_header("X-Repo-Commit", commit_of(owner + "/" + name))
                    self.send_header("X-Linked-Etag", '"%s"' % shown_sha(sha))
                    self.send_header("X-Linked-Size", str(size))
                    self.send_header("ETag", '"%s"' % hashlib.sha1(rel.encode()).hexdigest())
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            return self.error(404, "EntryNotFound", "Entry not found")
        return self.error(404, "NotFound", "no route")

    def cdn(self, url):
        m = re.match(r"^/blobs/([0-9a-f]{64})$", url.path)
        target = None
        if m:
            for owner in os.listdir(ARGS.root):
                for name in os.listdir(os.path.join(ARGS.root, owner)):
                    for _rel, size, sha, full in repo_files(os.path.join(ARGS.root, owner, name)):
                        if sha == m.group(1):
                            target = (full, size)
        if target is None:
            return self.error(404, "EntryNotFound", "no such blob")
        full, size = target
        start = 0
        rng = self.headers.get("Range")
        if rng and not ARGS.ignore_range:
            mm = re.match(r"^bytes=(\d+)-$", rng)
            if mm:
                start = int(mm.group(1))
        if start > size:
            self.send_response(416)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start > 0 else 200)
        if start > 0:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        self.send_header("Content-Length", str(size - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", '"%s"' % m.group(1))
        self.end_headers()
        if self.command == "HEAD":
            return
        cut = None
        with LOCK:
            if ARGS.cut_after is not None and CUTS_DONE[0] < ARGS.cut_times:
                CUTS_DONE[0] += 1
                cut = ARGS.cut_after
        sent = 0
        with open(full, "rb") as f:
            f.seek(start)
            while True:
                chunk = f.read(64 * 1024)
                if not chunk:
                    break
                if cut is not None and sent + len(chunk) >= cut:
                    self.wfile.write(chunk[:max(0, cut - sent)])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if ARGS.stall_after is not None and sent + len(chunk) >= ARGS.stall_after:
                    self.wfile.write(chunk[:max(0, ARGS.stall_after - sent)])
                    self.wfile.flush()
                    time.sleep(60)
                    return
                if ARGS.fill_disk and not FILLED[0] and sent + len(chunk) >= ARGS.fill_disk_at:
                    FILLED[0] = True
                    fill(ARGS.fill_disk)
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    return
                sent += len(chunk)


def fill(directory):
    try:
        with open(os.path.join(directory, "filler"), "wb") as f:
            while True:
                f.write(b"\0" * (64 * 1024))
                f.flush()
    except OSError:
        pass


class CdnHandler(Handler):
    server_name_tag = "cdn"


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--log")
    p.add_argument("--token")
    p.add_argument("--cut-after", type=int)
    p.add_argument("--cut-times", type=int, default=1)
    p.add_argument("--stall-after", type=int)
    p.add_argument("--wrong-sha", action="store_true")
    p.add_argument("--ignore-range", action="store_true")
    p.add_argument("--fill-disk", help="DIR:BYTES")
    p.add_argument("--page-size", type=int, default=1000)
    ARGS = p.parse_args()
    ARGS.fill_disk_at = 0
    if ARGS.fill_disk:
        ARGS.fill_disk, at = ARGS.fill_disk.rsplit(":", 1)
        ARGS.fill_disk_at = int(at)
    ThreadingHTTPServer.daemon_threads = True
    cdn = ThreadingHTTPServer(("127.0.0.1", 0), CdnHandler)
    ARGS.cdn_port = cdn.server_port
    hub = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    sys.stdout.write("%d %d\n" % (hub.server_port, cdn.server_port))
    sys.stdout.flush()
    try:
        sys.stdin.read()  # until the test closes our stdin (or dies)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
