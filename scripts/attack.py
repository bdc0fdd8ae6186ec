#!/usr/bin/env python3
"""The attack on a running rapport (issue 21), as a reproducible script.

Starts the real `rapport serve` binary over temporary folders on loopback and
attacks it the way a hostile user would, in eight bounded categories:

  1 leaks      leaks on every endpoint (internal canaries, paths, counts,
               the BM25 ranking side channel)
  2 xss        XSS payloads in a real browser (headless Chromium over W3C
               WebDriver), with and without the page's CSP
  3 traversal  traversal and odd ids on the API and the portal
  4 bodies     bad bodies, bad framing, 408/413/414/431: every error is a 4xx
               with the JSON error body
  5 slow       slow clients: half-sent headers, idle keep-alive, slow readers,
               more connections than `max_connections`
  6 rate       rate limits: random Authorization headers, spaced keys,
               X-Forwarded-For
  7 kill       concurrent traffic while articles change, SIGKILL, restart:
               the index equals the folder, nothing recorded is corrupt
  8 watcher    watcher abuse: folder links, deep nesting, NUL bytes,
               truncation, FIFOs, rename storms

Usage (Python 3.11, standard library only; nothing is built here):

  cargo build && python3 scripts/attack.py                 # full run, ~5 min
  python3 scripts/attack.py --quick                        # < 2 min
  python3 scripts/attack.py --only rate,slow               # some categories
  python3 scripts/attack.py --no-browser                   # skip category 2
  python3 scripts/attack.py --bin target/release/rapport   # another binary

It prints a Markdown table `| category | tries | failures |` and exits 1 when
anything failed (2 when the harness itself could not run). Every child process
and temporary folder is removed at the end, also on failure and Ctrl-C
(`--keep` keeps the folders and the server logs for a post-mortem).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import re
import selectors
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MAX_EXAMPLES = 12

CATEGORIES = [
    ("leaks", "1. leaks on every endpoint"),
    ("xss", "2. XSS payloads in a real browser"),
    ("traversal", "3. traversal and odd ids"),
    ("bodies", "4. bad bodies"),
    ("slow", "5. slow clients"),
    ("rate", "6. rate limits"),
    ("kill", "7. concurrency with kill -9"),
    ("watcher", "8. watcher abuse"),
]

# Everything this script started, so it can all be ended (by pid) at exit.
CHILDREN: list[subprocess.Popen] = []
CHILDREN_LOCK = threading.Lock()


def log(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------
# Bookkeeping


class Category:
    def __init__(self, key: str, title: str):
        self.key = key
        self.title = title
        self.tries = 0
        self.failures = 0
        self.examples: list[str] = []
        self.notes: list[str] = []
        self.skipped: str | None = None
        self.seconds = 0.0
        self.lock = threading.Lock()

    def check(self, ok: bool, what: str, detail: object = "") -> bool:
        with self.lock:
            self.tries += 1
            if not ok:
                self.failures += 1
                if len(self.examples) < MAX_EXAMPLES:
                    text = f"{what}: {detail}" if detail != "" else what
                    self.examples.append(shorten(text, 600))
        return ok

    def attempts(self, n: int) -> None:
        """Counts `n` more tries that a single check judged together."""
        with self.lock:
            self.tries += n

    def note(self, text: str) -> None:
        with self.lock:
            self.notes.append(text)


def shorten(text: str, limit: int = 300) -> str:
    text = str(text).replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 20] + f"… ({len(text)} chars)"


def rand_token(prefix: str, n: int = 8, rng: random.Random | None = None) -> str:
    rng = rng or random
    letters = string.ascii_lowercase
    return prefix + "".join(rng.choice(letters) for _ in range(n))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.05):
    """Polls `predicate` until it returns something truthy or time runs out;
    returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# --------------------------------------------------------------------------
# HTTP: a keep-alive client for ordinary requests and a raw socket client
# for everything a normal client would refuse to send.


class Resp:
    def __init__(self, status=None, headers=None, body=b"", error=None, elapsed=0.0, closed=None):
        self.status: int | None = status
        self.headers: dict[str, str] = headers or {}
        self.body: bytes = body
        self.error: str | None = error
        self.elapsed = elapsed
        self.closed = closed  # raw client: seconds until the server closed, if it did
        self._json = ...

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        if self._json is ...:
            try:
                self._json = json.loads(self.body)
            except ValueError:
                self._json = None
        return self._json

    def ctype(self) -> str:
        return self.headers.get("content-type", "")

    def __repr__(self) -> str:
        if self.error:
            return f"<error {self.error}>"
        return f"<{self.status} {self.ctype()} {shorten(self.text, 160)}>"


def error_shape_problem(resp: Resp) -> str | None:
    """None when `resp` is an error in the documented shape
    `{"error": {"code": str, "message": str}}` with a JSON content type."""
    if resp.status is None:
        return f"no response ({resp.error})"
    if not resp.ctype().startswith("application/json"):
        return f"{resp.status} with content-type {resp.ctype()!r}: {shorten(resp.text, 120)!r}"
    body = resp.json()
    if not isinstance(body, dict) or set(body) != {"error"}:
        return f"{resp.status} body is not {{'error': …}}: {shorten(resp.text, 120)!r}"
    err = body["error"]
    if not (isinstance(err, dict) and isinstance(err.get("code"), str) and isinstance(err.get("message"), str)):
        return f"{resp.status} error lacks code/message strings: {shorten(resp.text, 120)!r}"
    return None


class Http:
    """One keep-alive connection (per thread) to a server."""

    def __init__(self, port: int, source: str | None = None, timeout: float = 30.0):
        self.port = port
        self.source = source
        self.timeout = timeout
        self.local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(
                HOST, self.port, timeout=self.timeout,
                source_address=(self.source, 0) if self.source else None,
            )
            self.local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            conn.close()
            self.local.conn = None

    def request(self, method: str, path: str, body=None, headers=None, key: str | None = None,
                retry: bool = True, timeout: float | None = None) -> Resp:
        headers = dict(headers or {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        for attempt in (0, 1):
            conn = self._conn()
            if timeout is not None:
                conn.timeout = timeout
                if conn.sock:
                    conn.sock.settimeout(timeout)
            started = time.monotonic()
            try:
                conn.request(method, path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                resp = Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data,
                            elapsed=time.monotonic() - started)
                if r.will_close:
                    self.close()
                return resp
            except (http.client.HTTPException, OSError) as e:
                self.close()
                if attempt == 0 and retry and not isinstance(e, TimeoutError):
                    continue
                return Resp(error=f"{type(e).__name__}: {e}", elapsed=time.monotonic() - started)
        raise AssertionError("unreachable")

    def get(self, path: str, **kw) -> Resp:
        return self.request("GET", path, **kw)

    def post(self, path: str, body, **kw) -> Resp:
        return self.request("POST", path, body=body, **kw)


def _parse_head(head: bytes):
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            name = name.strip().lower()
            headers[name] = (headers[name] + ", " if name in headers else "") + value.strip()
    return status, headers


def _dechunk(data: bytes):
    """(body, complete) of a chunked body."""
    out = bytearray()
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return bytes(out), False
        try:
            size = int(data[pos:end].split(b";")[0], 16)
        except ValueError:
            return bytes(out), True
        if size == 0:
            return bytes(out), True
        if len(data) < end + 2 + size + 2:
            return bytes(out), False
        out += data[end + 2: end + 2 + size]
        pos = end + 2 + size + 2


def raw(port: int, chunks, timeout: float = 10.0, source: str | None = None,
        pause: float = 0.0, read_response: bool = True, wait_close: float = 0.0) -> Resp:
    """Sends `chunks` (bytes or a list of bytes, `pause` seconds apart) on a
    fresh connection and reads one response. Stops sending as soon as a
    response arrives (a server refusing a huge body answers early). With
    `wait_close`, keeps reading after the response to see whether the server
    closes the connection within that time."""
    if isinstance(chunks, (bytes, bytearray)):
        chunks = [bytes(chunks)]
    started = time.monotonic()
    try:
        sock = socket.create_connection((HOST, port), timeout=timeout,
                                        source_address=(source, 0) if source else None)
    except OSError as e:
        return Resp(error=f"connect: {e}")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = bytearray()
    closed_at = None
    send_error = None
    try:
        for i, chunk in enumerate(chunks):
            if i and pause:
                time.sleep(pause)
            try:
                sock.sendall(chunk)
            except OSError as e:
                send_error = e
                break
            # Anything back already? Then stop sending.
            sel = selectors.DefaultSelector()
            sel.register(sock, selectors.EVENT_READ)
            ready = sel.select(0)
            sel.close()
            if ready:
                break
        if not read_response:
            return Resp(error="not read", elapsed=time.monotonic() - started)
        deadline = started + timeout
        status = headers = None
        body_start = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                got = sock.recv(65536)
            except (TimeoutError, socket.timeout):
                break
            except OSError as e:
                closed_at = time.monotonic() - started
                if not data:
                    return Resp(error=f"recv: {e} (send: {send_error})", elapsed=closed_at, closed=closed_at)
                break
            if not got:
                closed_at = time.monotonic() - started
                break
            data += got
            if body_start is None:
                idx = data.find(b"\r\n\r\n")
                if idx < 0:
                    continue
                status, headers = _parse_head(bytes(data[:idx]))
                if status is not None and 100 <= status < 200:
                    del data[: idx + 4]
                    continue
                body_start = idx + 4
            if body_start is not None:
                body = bytes(data[body_start:])
                if "content-length" in headers:
                    try:
                        if len(body) >= int(headers["content-length"]):
                            break
                    except ValueError:
                        pass
                elif "chunked" in headers.get("transfer-encoding", "").lower():
                    if _dechunk(body)[1]:
                        break
        if body_start is None:
            err = "timeout" if closed_at is None else "closed without a response"
            if send_error:
                err += f" (send: {send_error})"
            return Resp(error=err, elapsed=time.monotonic() - started, closed=closed_at)
        body = bytes(data[body_start:])
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = _dechunk(body)[0]
        elif "content-length" in headers:
            with contextlib.suppress(ValueError):
                body = body[: int(headers["content-length"])]
        resp = Resp(status, headers, body, elapsed=time.monotonic() - started, closed=closed_at)
        if wait_close and closed_at is None:
            sock.settimeout(wait_close)
            try:
                while sock.recv(65536):
                    pass
                resp.closed = time.monotonic() - started
            except (TimeoutError, socket.timeout):
                pass
            except OSError:
                resp.closed = time.monotonic() - started
        return resp
    finally:
        sock.close()


def request_bytes(method: str, path: str, headers=None, body: bytes = b"", close: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body and not any(h.lower() in ("content-length", "transfer-encoding") for h in (headers or {})):
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body


# --------------------------------------------------------------------------
# The server under attack


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


class Server:
    def __init__(self, run: "Run", name: str, config: dict | None = None):
        self.run = run
        self.name = name
        self.root = run.tmp / name
        self.articles = self.root / "articles"
        self.index = self.root / "index"
        self.data = self.root / "data"
        for d in (self.articles, self.index, self.data):
            d.mkdir(parents=True, exist_ok=True)
        self.agent_key = rand_token("agent-", 16)
        self.admin_key = rand_token("admin-", 16)
        self.extra_agent_keys = [rand_token(f"agent{i}-", 16) for i in range(6)]
        self.config = {
            "articles": str(self.articles),
            "index": str(self.index),
            "data_dir": str(self.data),
            "agent_keys": [self.agent_key] + self.extra_agent_keys,
            "admin_keys": [self.admin_key],
            "rate_limit_per_second": 0,
            "debounce_ms": 50,
        }
        self.config.update(config or {})
        self.config_path = self.root / "rapport.toml"
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.starts = 0
        self.log_lines: list[str] = []
        self.log_lock = threading.Lock()
        self._http: Http | None = None

    def write(self, rel: str, content, mode: str = "w") -> Path:
        path = self.articles / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def start(self, ready_timeout: float = 90.0, wait_ready: bool = True) -> None:
        self.config_path.write_text(
            "".join(f"{k} = {toml_value(v)}\n" for k, v in self.config.items()))
        self.port = free_port()
        self.starts += 1
        log_path = self.root / f"server-{self.starts}.log"
        env = dict(os.environ, RUST_LOG="info", NO_COLOR="1")
        for name in list(env):
            # Only this script's settings: a RAPPORT_* variable in the caller's
            # environment would beat the config file.
            if name.startswith("RAPPORT_"):
                del env[name]
        proc = subprocess.Popen(
            [str(self.run.bin), "serve", "--config", str(self.config_path), "--addr", f"{HOST}:{self.port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            cwd=self.root, env=env, start_new_session=True,
        )
        with CHILDREN_LOCK:
            CHILDREN.append(proc)
        self.proc = proc
        serving = threading.Event()

        def pump():
            with open(log_path, "w") as out:
                for raw_line in proc.stderr:
                    line = raw_line.decode("utf-8", "replace").rstrip("\n")
                    out.write(line + "\n")
                    out.flush()
                    with self.log_lock:
                        self.log_lines.append(line)
                        if len(self.log_lines) > 5000:
                            del self.log_lines[:1000]
                    if "serving on http://" in line:
                        serving.set()

        threading.Thread(target=pump, daemon=True).start()
        self._http = Http(self.port)
        if not wait_ready:
            return
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.name}: rapport exited with {proc.returncode}:\n" + self.tail(15))
            if serving.is_set():
                r = raw(self.port, request_bytes("GET", "/ready"), timeout=5)
                if r.status == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: not ready after {ready_timeout:.0f} s:\n" + self.tail(15))

    def is_ready(self) -> bool:
        return raw(self.port, request_bytes("GET", "/ready"), timeout=5).status == 200

    def tail(self, n: int = 20) -> str:
        with self.log_lock:
            return "\n".join(self.log_lines[-n:])

    def logs_since(self, mark: int) -> list[str]:
        with self.log_lock:
            return self.log_lines[mark:]

    def log_mark(self) -> int:
        with self.log_lock:
            return len(self.log_lines)

    @property
    def http(self) -> Http:
        assert self._http is not None
        return self._http

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, grace: float = 15.0) -> bool:
        """SIGTERM, then SIGKILL after `grace`; True when it exited by itself."""
        if not self.proc or self.proc.poll() is not None:
            return True
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
            return True
        except subprocess.TimeoutExpired:
            self.kill9()
            return False
        finally:
            if self._http:
                self._http.close()

    # Convenience

    def status(self, key: str | None = "admin") -> dict:
        k = self.admin_key if key == "admin" else key
        r = self.http.get("/api/v1/status", key=k)
        return r.json() or {}

    def search(self, q: str, key: str | None = None, limit: int = 10, extra: str = "") -> Resp:
        return self.http.get(f"/api/v1/search?q={urllib.parse.quote(q)}&limit={limit}{extra}", key=key)

    def hits(self, q: str, key: str | None = "admin", limit: int = 10) -> list[dict] | None:
        r = self.search(q, key=self.admin_key if key == "admin" else key, limit=limit)
        body = r.json()
        if r.status != 200 or not isinstance(body, dict):
            return None
        return body.get("hits", [])

    def listing(self, key: str | None = "admin") -> list[str] | None:
        """Every article id the caller can list (all pages)."""
        k = self.admin_key if key == "admin" else key
        ids: list[str] = []
        offset = 0
        while True:
            r = self.http.get(f"/api/v1/articles?limit=50&offset={offset}", key=k)
            body = r.json()
            if r.status != 200 or not isinstance(body, dict):
                return None
            page = [a["id"] for a in body.get("articles", [])]
            ids += page
            offset += len(page)
            if not page or offset >= body.get("total", 0):
                return ids


def md(title: str, body: str, **front) -> str:
    lines = ["---", f"title: {json.dumps(title, ensure_ascii=False)}"]
    for key, value in front.items():
        lines.append(f"{key}: {json.dumps(value, ensure_ascii=False)}")
    lines.append("---")
    return "\n".join(lines) + "\n" + body + "\n"


# --------------------------------------------------------------------------
# The run


class Run:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.rng = random.Random(args.seed)
        self.bin = args.bin
        self.tmp = Path(tempfile.mkdtemp(prefix="rapport-attack-"))
        self.servers: list[Server] = []
        self.categories = {key: Category(key, title) for key, title in CATEGORIES}

    def server(self, name: str, config: dict | None = None) -> Server:
        srv = Server(self, name, config)
        self.servers.append(srv)
        return srv

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def forbidden_paths(self) -> list[str]:
        out = {str(self.tmp), os.path.realpath(self.tmp), str(REPO)}
        return sorted(out)

    def cleanup(self) -> None:
        for srv in self.servers:
            with contextlib.suppress(Exception):
                srv.kill9()
        kill_children()
        if self.args.keep:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def kill_children() -> None:
    with CHILDREN_LOCK:
        children = list(CHILDREN)
    for proc in children:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                # Each child leads its own process group (start_new_session):
                # this ends chromedriver's browser too, and nothing else.
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                proc.wait(5)


# --------------------------------------------------------------------------
# 1. Leaks on every endpoint


def canary(label: str) -> str:
    # Letters only and a fixed tail: one token, never stemmed, never a typo
    # of another canary.
    return rand_token("zq" + label, 7) + "qz"


PUBLIC_LEAK_ARTICLES = {
    "billing/refunds.md": md(
        "Refund a duplicate charge",
        "If you were charged twice, ask for a refund. A refund reaches the invoice within five days.\n\n"
        "## Duplicate charge\n\nA duplicate charge is refunded automatically; escalation is rarely needed.\n",
        category="Billing", tags=["billing", "refund"], products=["web"]),
    "billing/invoices.md": md(
        "Send an invoice",
        "Create an invoice, add a line, send it. An invoice can be refunded.\n\n## Reminders\n\nSend reminders.\n",
        category="Billing", tags=["invoice"], products=["web", "ios"]),
    "account/password.md": md(
        "Reset your password",
        "Use the reset link. Passwords must be long.\n\n## Lost email\n\nContact support.\n",
        category="Account", tags=["password", "sign-in"]),
    "account/two-step.md": md(
        "Turn on two-step verification",
        "Scan the code with an authenticator app.\n\n## Recovery codes\n\nKeep them safe.\n",
        category="Account", tags=["2fa"]),
    "mobile/offline.md": md(
        "Work offline",
        "Receipts scanned offline upload later.\n\n## Stuck uploads\n\nRestart the app.\n",
        category="Mobile", tags=["offline"], products=["ios"]),
    # Links to an internal article: resolved for keyed readers only.
    "guide/links.md": md(
        "Where to read more",
        "See [the linked notes](../notes/secret-link.md) and [the same](/notes/secret-link) for refunds.\n",
        category="Guide", tags=["links"]),
}

SIDE_CHANNEL_QUERIES = [
    "refund", "refund invoice", "duplicate charge", "escalation", "refund escalation playbook",
    "charge", "refu", "refnd", "invoice charge duplicate refund", "send invoice",
]


def side_channel_snapshot(srv: Server) -> dict:
    """Anonymous rankings the internal articles must not move."""
    snap = {}
    for q in SIDE_CHANNEL_QUERIES:
        r = srv.search(q, limit=10)
        body = r.json() or {}
        snap[("search", q)] = (body.get("total"), [(h["id"], h.get("score")) for h in body.get("hits", [])])
        r = srv.http.get(f"/api/v1/autocomplete?q={urllib.parse.quote(q)}")
        body = r.json() or {}
        snap[("autocomplete", q)] = [s["id"] for s in body.get("suggestions", [])]
        r = srv.http.post("/api/v1/answer", {"question": q})
        body = r.json() or {}
        answer = body.get("answer") or {}
        snap[("answer", q)] = (answer.get("article_id"), body.get("confidence"),
                               [a.get("article_id") for a in body.get("alternatives", [])])
    return snap


def close_enough(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return abs(a - b) <= 1e-6 + 1e-4 * max(abs(a), abs(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close_enough(x, y) for x, y in zip(a, b))
    return a == b


def cat_leaks(run: Run, cat: Category) -> None:
    srv = run.server("leaks", {"feedback_ranking": False})
    c = {label: canary(label) for label in (
        "folder", "tone", "sone", "gone", "pone", "hone", "bone", "ttwo", "idtwo", "cattwo", "btwo",
        "tthree", "aud", "bthree", "tfour", "tlink", "idlink", "blink", "broken", "brokensum",
        "outside", "linktag")}
    folder = c["folder"]
    for rel, text in PUBLIC_LEAK_ARTICLES.items():
        srv.write(rel, text)
    srv.start()
    public_ids = sorted(p[: -len(".md")] for p in PUBLIC_LEAK_ARTICLES)
    n_public = len(public_ids)

    # Phase 1: rankings before any internal article exists.
    before = side_channel_snapshot(srv)

    # Phase 2: internal articles with canaries everywhere, a broken internal
    # article whose YAML error quotes a canary, and links out of the folder.
    shared = "refund invoice charge duplicate escalation playbook " * 6
    internal_files = {
        f"{folder}/escalation-1.md": md(
            f"Refund escalation playbook {c['tone']}",
            f"{shared}\n\n{c['bone']} internal refund steps.\n\n## {c['hone']} refund steps\n\nCall finance about the refund.\n",
            audience="internal", summary=f"{c['sone']} refund", tags=["refund", c["gone"]], products=[c["pone"]]),
        f"{folder}/escalation-2.md": md(
            f"Invoice charge override {c['ttwo']}",
            f"{shared}\n\n{c['btwo']} override the invoice charge.\n",
            audience="internal", id=c["idtwo"], category=c["cattwo"], tags=["invoice"]),
        f"{folder}/escalation-3.md": md(
            f"{c['tthree']} duplicate refund",
            f"{shared}\n\n{c['bthree']} duplicate charge handling.\n",
            audience=c["aud"]),  # an unknown access value: internal
        f"{folder}/escalation-4.md": md(
            f"Refund refund refund {c['tfour']}", shared * 3, audience="internal"),
        "notes/secret-link.md": md(
            f"Linked notes {c['tlink']}", f"{c['blink']} about refunds.\n", audience="internal",
            id=c["idlink"], tags=[c["linktag"]]),
        f"{folder}/broken.md": (
            f"---\naudience: internal\ntitle: Broken {c['broken']}\nsummary: [{c['brokensum']} unclosed\n---\nBody.\n"),
    }
    for rel, text in internal_files.items():
        srv.write(rel, text)
    outside = srv.root / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.md").write_text(md(f"Outside {c['outside']}", f"{c['outside']} refund"))
    os.symlink("/etc/passwd", srv.articles / "passwd.md")
    os.symlink(outside / "secret.md", srv.articles / "outside.md")
    n_internal = 5

    def settled():
        st = srv.status()
        hits = srv.hits(c["tone"]) or []
        return (st.get("internal_articles") == n_internal and st.get("skipped_files", 0) >= 3
                and any(h["id"].startswith(folder) for h in hits))

    ok = wait_until(settled, 20)
    cat.check(bool(ok), "sanity: the internal articles are indexed and visible to the admin key",
              json.dumps(srv.status())[:400])
    admin_status = json.dumps(srv.status())
    cat.check(c["broken"] in admin_status and "/etc/passwd" in admin_status,
              "sanity: the admin status names the broken file and the symlink target", admin_status[:300])

    after = side_channel_snapshot(srv)
    for key, value in before.items():
        cat.check(close_enough(value, after[key]),
                  f"ranking side channel: anonymous {key[0]} {key[1]!r} changed when internal articles were added",
                  f"before {value} after {after[key]}")

    # Phase 3: anonymous requests to every route.
    internal_ids = [f"{folder}/escalation-1", c["idtwo"], f"{folder}/escalation-3", f"{folder}/escalation-4",
                    c["idlink"]]
    skipped_ids = [f"{folder}/broken", "passwd", "outside"]
    forbidden = sorted(set(c.values()) | {
        "notes/secret-link", "/etc/passwd", "passwd", "root:x:0:0", "internal_articles", "public_articles",
        "unrecognized_audience", "broken.md", "outside.md", "meta.json", "panicked", "/rustc/", ".rs:",
    } | set(run.forbidden_paths()))
    # Forbidden words that a public article legitimately contains.
    public_text = " ".join(PUBLIC_LEAK_ARTICLES.values()).lower()
    forbidden = [f for f in forbidden if f.lower() not in public_text]
    internal_only_values = {folder, c["cattwo"], c["gone"], c["pone"], c["linktag"]}

    anon = srv.http
    if run.args.self_test:
        # "Anonymous" requests that secretly carry the agent key: every leak check must fire.
        anon = Http(srv.port)
        plain_request = anon.request
        anon.request = lambda method, path, key=None, **kw: plain_request(method, path, key=key or srv.agent_key, **kw)
    stats = {"requests": 0}

    def scan(method, path, resp: Resp, body=None, what=""):
        stats["requests"] += 1
        request_text = urllib.parse.unquote_plus(path).lower() + " " + (
            json.dumps(body) if body is not None else "").lower()
        label = what or f"{method} {shorten(urllib.parse.unquote(path), 120)}"
        if resp.status is None:
            cat.check(False, f"{label}: no response", resp.error)
            return
        cat.check(resp.status < 500, f"{label}: server error", resp)
        haystack = (resp.text + " " + " ".join(f"{k}: {v}" for k, v in resp.headers.items())).lower()
        leaked = [f for f in forbidden if f.lower() in haystack and f.lower() not in request_text]
        cat.check(not leaked, f"{label}: anonymous response leaks", f"{leaked} in {shorten(resp.text, 200)}")
        if resp.status >= 400 and path.startswith("/api/"):
            problem = error_shape_problem(resp)
            cat.check(problem is None, f"{label}: error body", problem)
        body_json = resp.json() if resp.ctype().startswith("application/json") else None
        if isinstance(body_json, dict):
            for k in ("internal_articles", "public_articles", "skipped", "unrecognized_audience", "batches"):
                cat.check(k not in body_json, f"{label}: anonymous JSON has {k!r}", shorten(resp.text, 200))

    def get(path, key=None, what=""):
        r = anon.get(path, key=key)
        scan("GET", path, r, what=what)
        return r

    def post(path, body, key=None, what=""):
        r = anon.post(path, body, key=key)
        scan("POST", path, r, body=body, what=what)
        return r

    def no_hits(r: Resp, what: str, portal: bool = False):
        if portal:
            n = r.text.count('class="hit"')
            cat.check(n == 0, f"{what}: anonymous portal search shows {n} hit(s)", "")
        else:
            body = r.json() or {}
            items = body.get("hits", body.get("suggestions", body.get("articles", [])))
            cat.check(not items and body.get("total", 0) == 0,
                      f"{what}: anonymous results for an internal-only term", shorten(r.text, 200))

    q = urllib.parse.quote
    # The routes, from the served OpenAPI document.
    spec = anon.get("/openapi.json").json() or {}
    operations = [(m.upper(), p, op) for p, ops in spec.get("paths", {}).items() for m, op in ops.items()]
    cat.check(len(operations) >= 10, "sanity: /openapi.json lists the API", len(operations))
    known = {"/api/v1/search", "/api/v1/autocomplete", "/api/v1/answer", "/api/v1/suggest", "/api/v1/feedback",
             "/api/v1/sessions/{session_id}", "/api/v1/analytics/summary", "/api/v1/analytics/queries",
             "/api/v1/analytics/articles", "/api/v1/articles", "/api/v1/articles/{id}", "/api/v1/status",
             "/health", "/ready"}
    canary_queries = [c[k] for k in ("tone", "sone", "gone", "pone", "hone", "bone", "ttwo", "idtwo", "cattwo",
                                     "btwo", "tthree", "aud", "bthree", "tfour", "tlink", "idlink", "blink",
                                     "broken", "brokensum", "outside", "folder", "linktag")]
    # Prefixes and one-edit typos: the typo and prefix expansions read the
    # index vocabulary, which holds internal words.
    derived = []
    for word in canary_queries[:8]:
        derived += [word[:-1], word[:-2], word[:7], word[:-3] + "x" + word[-2:], word + "s", word.upper()]
    pure_canary = canary_queries + derived
    queries = SIDE_CHANNEL_QUERIES + ["password", "offline upload", "*", "audience:internal", "internal",
                                      "title:" + c["tone"], f'"{c["tone"]}"', "refund " + c["tone"]]

    for method, path, op in operations:
        if path not in known:
            # A route this script doesn't know yet: try it with internal ids
            # and canaries in every parameter.
            params = [p for p in op.get("parameters", []) if p.get("in") == "query"]
            for value in [internal_ids[0], c["tone"], "x"]:
                concrete = re.sub(r"\{[^}]+\}", q(value, safe=""), path)
                qs = "&".join(f"{p['name']}={q(value)}" for p in params)
                url = concrete + ("?" + qs if qs else "")
                if method == "GET":
                    get(url, what=f"new route {method} {path}")
                else:
                    post(url, {"question": value, "q": value, "id": value}, what=f"new route {method} {path}")

    # Search, autocomplete, answer, portal search: every query, and the
    # internal-only terms return nothing.
    for word in queries + pure_canary:
        r = get(f"/api/v1/search?q={q(word)}&limit=50")
        if word in pure_canary:
            no_hits(r, f"search {word!r}")
        r = get(f"/api/v1/autocomplete?q={q(word)}&limit=20")
        if word in pure_canary:
            no_hits(r, f"autocomplete {word!r}")
        r = post("/api/v1/answer", {"question": word, "session_id": rand_token("s")})
        if word in pure_canary:
            body = r.json() or {}
            cat.check(not body.get("answer") and not body.get("alternatives"),
                      f"answer {word!r}: anonymous answer for an internal-only term", shorten(r.text, 200))
        r = get(f"/search?q={q(word)}")
        if word in pure_canary:
            no_hits(r, f"portal search {word!r}", portal=True)
    # Filters by internal-only values.
    for value in sorted(internal_only_values):
        for name in ("category", "tag", "product"):
            no_hits(get(f"/api/v1/search?q=refund&{name}={q(value)}"), f"search filtered by {name}={value}")
            if name != "tag":
                no_hits(get(f"/api/v1/autocomplete?q=ref&{name}={q(value)}"), f"autocomplete {name}={value}")
            no_hits(get(f"/api/v1/articles?{name}={q(value)}"), f"listing {name}={value}")
        no_hits(get(f"/search?q=refund&category={q(value)}"), f"portal search category={value}", portal=True)
        no_hits(get(f"/search?q=refund&tag={q(value)}"), f"portal search tag={value}", portal=True)
    post("/api/v1/answer", {"question": "refund", "context": {"product": c["pone"], "plan": c["aud"]}})

    # Counts: the anonymous status and listing count public articles only.
    st = get("/api/v1/status").json() or {}
    cat.check(st.get("articles") == n_public, "anonymous status counts internal articles",
              f"articles={st.get('articles')}, public={n_public}")
    listing = get("/api/v1/articles?limit=50").json() or {}
    cat.check(listing.get("total") == n_public, "anonymous listing total counts internal articles",
              f"total={listing.get('total')}, public={n_public}")
    got_ids = sorted(a["id"] for a in listing.get("articles", []))
    cat.check(got_ids == public_ids, "anonymous listing is exactly the public articles", got_ids)
    home = get("/")
    counts = [int(n) for n in re.findall(r'<span>(\d+) articles?</span>', home.text)]
    cat.check(0 < sum(counts) <= n_public, "home page category counts include internal articles", counts)

    # Internal ids, skipped files and never-existing ids answer alike.
    def same_as_missing(fetch, present: str, label: str):
        missing = rand_token("zzmissing")
        a, b = fetch(present), fetch(missing)
        norm = lambda r: (r.status, re.sub(r'"query_id":"[^"]*"|"took_ms":[0-9.e-]+', "", r.text)
                          .replace(q(present, safe="/"), "ID").replace(present, "ID")
                          .replace(q(missing, safe="/"), "ID").replace(missing, "ID"))
        cat.check(norm(a) == norm(b), f"{label} {present!r} is distinguishable from an id that never existed",
                  f"{a} vs {b}")

    qid = (anon.get("/api/v1/search?q=refund").json() or {}).get("query_id", "")
    for ident in internal_ids + skipped_ids:
        same_as_missing(lambda i: get(f"/api/v1/articles/{q(i, safe='/')}"), ident, "API article")
        same_as_missing(lambda i: get(f"/articles/{q(i, safe='/')}"), ident, "portal article")
        same_as_missing(lambda i: post("/api/v1/feedback", {"query_id": qid, "article_id": i, "event": "click"}),
                        ident, "feedback on")
    for value in (folder, c["cattwo"]):
        same_as_missing(lambda i: get(f"/categories/{q(i, safe='')}"), value, "portal category")
    for ident in public_ids:
        r = get(f"/api/v1/articles/{ident}")
        cat.check(r.status == 200, f"sanity: public article {ident} is served", r)
        r = get(f"/articles/{ident}")
        cat.check(r.status == 200, f"sanity: portal page {ident} is served", r)
    for name in ("Billing", "Account", "Mobile", "Guide"):
        get(f"/categories/{name}")

    # Keyed-only routes refuse anonymous callers.
    for method, path, body in [
        ("POST", "/api/v1/suggest", {"transcript": [{"role": "customer", "text": "refund " + c["tone"]}]}),
        ("GET", "/api/v1/sessions/" + rand_token("s"), None),
        ("GET", "/api/v1/analytics/summary", None), ("GET", "/api/v1/analytics/queries?kind=top", None),
        ("GET", "/api/v1/analytics/articles", None), ("GET", "/metrics", None),
    ]:
        r = post(path, body) if method == "POST" else get(path)
        cat.check(r.status == 401, f"{method} {path} without a key is not 401", r)
        r = anon.request(method, path, body=body, key=rand_token("unknown-"))
        scan(method, path, r, body=body, what=f"{method} {path} with an unknown key")
        cat.check(r.status == 401, f"{method} {path} with an unknown key is not 401", r)
    r = anon.get("/metrics", key=srv.agent_key)
    cat.check(r.status == 403, "/metrics with an agent key is not 403", r)
    r = anon.get("/metrics", key=srv.admin_key)
    cat.check(r.status == 200 and "rapport_http_open_connections" in r.text,
              "sanity: /metrics with the admin key", shorten(r.text, 200))
    for path in ["/health", "/ready", "/openapi.json", "/agent", "/search", "/assets/portal.js",
                 "/assets/portal.css", "/assets/agent.js", "/favicon.ico", "/robots.txt", "/sitemap.xml",
                 "/api/v1", "/api/v1/", "/api/v2/status", "/api/v1/articles/", "/categories/"]:
        get(path)
    get("/api/v1/status", key=rand_token("unknown-"))

    # A bounded random sweep over the same surface.
    rng = run.rng
    pools = {
        "q": queries + pure_canary + ["refund " + w for w in pure_canary[:6]],
        "filter": sorted(internal_only_values) + ["Billing", "refund", "web", "ios", "en", "x"],
        "ids": internal_ids + skipped_ids + public_ids + [rand_token("zzmissing")],
    }
    for _ in range(run.n(1600, 300)):
        kind = rng.choice(["search", "autocomplete", "answer", "portal", "article", "portal-article",
                           "list", "category", "feedback", "status"])
        word = rng.choice(pools["q"])
        filt = rng.choice(pools["filter"])
        fname = rng.choice(["category", "tag", "product", "locale"])
        internal_filter = filt in internal_only_values and fname != "locale"
        pure = word in pure_canary
        if kind == "search":
            r = get(f"/api/v1/search?q={q(word)}&{fname}={q(filt)}&limit={rng.choice([1, 10, 50])}")
            if pure or internal_filter:
                no_hits(r, f"search {word!r} {fname}={filt}")
        elif kind == "autocomplete":
            fname = "tag" if fname == "tag" else fname
            r = get(f"/api/v1/autocomplete?q={q(word[: rng.randint(2, max(2, len(word)))])}")
        elif kind == "answer":
            post("/api/v1/answer", {"question": word, "context": {"product": filt}})
        elif kind == "portal":
            r = get(f"/search?q={q(word)}" + (f"&{fname}={q(filt)}" if fname in ("category", "tag") else ""))
            if pure or (internal_filter and fname in ("category", "tag")):
                no_hits(r, f"portal search {word!r} {fname}={filt}", portal=True)
        elif kind == "article":
            get(f"/api/v1/articles/{q(rng.choice(pools['ids']), safe='/')}")
        elif kind == "portal-article":
            get(f"/articles/{q(rng.choice(pools['ids']), safe='/')}")
        elif kind == "list":
            r = get(f"/api/v1/articles?{fname}={q(filt)}&limit=50&offset={rng.choice([0, 1, 5])}")
            if internal_filter:
                no_hits(r, f"listing {fname}={filt}")
        elif kind == "category":
            get(f"/categories/{q(filt, safe='')}")
        elif kind == "feedback":
            post("/api/v1/feedback", {"query_id": qid, "article_id": rng.choice(pools["ids"]),
                                      "event": rng.choice(["click", "helpful", "not_helpful"])})
        else:
            get(rng.choice(["/api/v1/status", "/ready", "/health", "/"]))
    cat.note(f"{stats['requests']} anonymous requests scanned for {len(forbidden)} forbidden strings")
    srv.stop()


# --------------------------------------------------------------------------
# 2. XSS payloads in a real browser

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver element key


def page_console_problems(wd: "WebDriver", bypass: bool) -> list[str]:
    """The page's console errors (CSP violations among them), read either
    way so the next page starts with an empty log; with the CSP bypassed
    they mean nothing."""
    logs = wd.logs()
    return [] if bypass else [f"console: {m}" for m in console_problems(logs)]


def find_browser() -> tuple[str | None, str | None]:
    chromium = os.environ.get("RAPPORT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("RAPPORT_CHROMEDRIVER") or shutil.which("chromedriver")
    return chromium, driver


class WebDriver:
    """Just enough of the W3C WebDriver protocol, over urllib."""

    def __init__(self, run: Run, chromium: str, driver: str):
        self.port = free_port()
        self.proc = subprocess.Popen([driver, f"--port={self.port}"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        with CHILDREN_LOCK:
            CHILDREN.append(self.proc)
        self.base = f"http://{HOST}:{self.port}"
        self.session = None
        ok = wait_until(lambda: self._ready(), 20, 0.1)
        if not ok:
            raise RuntimeError("chromedriver did not start")
        profile = tempfile.mkdtemp(prefix="profile-", dir=run.tmp)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium,
                                   "args": CHROMIUM_FLAGS + [f"--user-data-dir={profile}", "--window-size=1200,900"]},
            "goog:loggingPrefs": {"browser": "ALL"},
            "unhandledPromptBehavior": "dismiss",
            "timeouts": {"pageLoad": 20000, "script": 10000},
        }}}
        value = self.call("POST", "/session", caps)
        if "sessionId" not in value:
            raise RuntimeError(f"no WebDriver session: {shorten(value, 300)}")
        self.session = value["sessionId"]

    def _ready(self) -> bool:
        try:
            return bool(self.call("GET", "/status").get("ready"))
        except Exception:
            return False

    def call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read()).get("value")
        except urllib.error.HTTPError as e:
            value = json.loads(e.read() or b"{}").get("value", {})
            raise RuntimeError(f"WebDriver {method} {path}: {shorten(value, 300)}") from None

    def s(self, path: str) -> str:
        return f"/session/{self.session}{path}"

    def goto(self, url: str) -> None:
        self.call("POST", self.s("/url"), {"url": url})

    def js(self, script: str, *args):
        return self.call("POST", self.s("/execute/sync"), {"script": script, "args": list(args)})

    def logs(self) -> list[dict]:
        try:
            return self.call("POST", self.s("/se/log"), {"type": "browser"}) or []
        except RuntimeError:
            return []

    def bypass_csp(self, enabled: bool) -> None:
        self.call("POST", self.s("/goog/cdp/execute"), {"cmd": "Page.setBypassCSP", "params": {"enabled": enabled}})

    def find(self, css: str) -> str | None:
        try:
            return self.call("POST", self.s("/element"), {"using": "css selector", "value": css})[ELEMENT]
        except (RuntimeError, KeyError, TypeError):
            return None

    def type(self, element: str, text: str) -> None:
        self.call("POST", self.s(f"/element/{element}/value"), {"text": text})

    def close(self) -> None:
        if self.session:
            with contextlib.suppress(Exception):
                self.call("DELETE", self.s(""))
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def xss_payloads(tag: str) -> list[str]:
    """Classic payloads; each one, if it ever runs, sets window.__xss to `tag`
    (or changes the title to XSS-…)."""
    s = f"window.__xss='{tag}'"
    return [
        f"<script>{s};document.title='XSS-{tag}'</script>",
        f"<img src=x onerror=\"{s}\">",
        f"<svg onload=\"{s}\"></svg>",
        f"\"><svg/onload={s}>",
        f"'><img src=x onerror={s}>",
        f"<a href=\"javascript:{s}\">click</a>",
        f"<iframe srcdoc=\"<script>parent.__xss='{tag}'</script>\"></iframe>",
        f"<details open ontoggle=\"{s}\">d</details>",
        f"<input autofocus onfocus=\"{s}\">",
        f"</title><script>{s}</script>",
        f"</template><img src=x onerror=\"{s}\">",
        f"</textarea><script>{s}</script>",
        f"<math><mtext><table><mglyph><style><img src=x onerror=\"{s}\">",
        f"<noscript><p title=\"</noscript><img src=x onerror={s}>\">",
        f"{{{{constructor.constructor(\"{s}\")()}}}} {{{{7*7191}}}} ${{7*7191}} #{{7*7191}}",
        f"<object data=\"javascript:{s}\"></object>",
        f"<meta http-equiv=\"refresh\" content=\"0;url=javascript:{s}\">",
        f"<div style=\"background:url(javascript:{s})\">st</div>",
        f"<a href=\"jav&#x09;ascript:{s}\">tab</a>",
        f"<form action=\"javascript:{s}\"><button>go</button></form>",
        f"<base href=\"javascript:{s}//\">",
        f"<body onload=\"{s}\">",
    ]


def xss_markdown_body(tag: str) -> str:
    s = f"window.__xss='{tag}"
    return (
        f"[click me](javascript:{s}-link')\n\n"
        f"[again](  JaVaScRiPt:{s}-link2')\n\n"
        f"![img](x\" onerror=\"{s}-img')\n\n"
        f"[ref link][r]\n\n[r]: javascript:{s}-ref'\n\n"
        f"<javascript:{s}-auto'>\n\n"
        f"`<script>{s}-code'</script>`\n\n"
        f"```html\n<script>{s}-block'</script>\n```\n\n"
        f"[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)\n"
    )


DETECT_JS = r"""
const out = {xss: window.__xss === undefined ? null : String(window.__xss), title: document.title,
             handlers: [], urls: [], frames: 0, scripts: [], template: false};
for (const el of document.querySelectorAll('*')) {
  for (const a of el.attributes) {
    if (/^on/i.test(a.name)) out.handlers.push(el.tagName + '[' + a.name + ']');
    if (/^(href|src|action|formaction|data|xlink:href)$/i.test(a.name) &&
        /^\s*(javascript|vbscript|data:text\/html)/i.test(a.value.replace(/[\u0000-\u0020]/g, '')))
      out.urls.push(el.tagName + '[' + a.name + '=' + a.value.slice(0, 60) + ']');
  }
}
out.frames = document.querySelectorAll('iframe, frame, object, embed, base, meta[http-equiv]').length;
for (const sc of document.querySelectorAll('script')) {
  const src = sc.getAttribute('src') || '';
  if (!src.startsWith('/assets/') || sc.textContent.trim()) out.scripts.push(src || sc.textContent.slice(0, 60));
}
out.template = (document.body && document.body.innerText || '').includes('50337');
return out;
"""


def xss_problems(found: dict) -> list[str]:
    problems = []
    if not isinstance(found, dict):
        return [f"detector failed: {found!r}"]
    if found.get("xss") is not None:
        problems.append(f"payload ran: window.__xss={found['xss']!r}")
    if str(found.get("title", "")).startswith("XSS-"):
        problems.append(f"payload ran: document.title={found['title']!r}")
    if found.get("handlers"):
        problems.append(f"event-handler attributes in the DOM: {found['handlers'][:5]}")
    if found.get("urls"):
        problems.append(f"script URLs in the DOM: {found['urls'][:5]}")
    if found.get("frames"):
        problems.append(f"{found['frames']} iframe/object/embed/base/meta element(s) in the DOM")
    if found.get("scripts"):
        problems.append(f"foreign scripts in the DOM: {found['scripts'][:3]}")
    if found.get("template"):
        problems.append("a template expression was evaluated (7*7191 = 50337 on the page)")
    return problems


def console_problems(entries: list[dict]) -> list[str]:
    out = []
    for entry in entries:
        message = entry.get("message", "")
        if "Failed to load resource" in message or "favicon" in message:
            continue  # 404s for `src=x`, the not-found pages themselves
        if entry.get("level") in ("SEVERE", "WARNING") and (
                "Content Security Policy" in message or "Refused to" in message or "Uncaught" in message):
            out.append(shorten(message, 240))
    return out


def cat_xss(run: Run, cat: Category) -> None:
    chromium, driver = find_browser()
    if not chromium or not driver:
        cat.skipped = "chromium/chromedriver not found (apt-get install -y chromium chromium-driver)"
        return
    srv = run.server("xss")
    payload_count = len(xss_payloads("t"))
    ids = []
    for j in range(payload_count):
        p = lambda field: xss_payloads(f"{field}{j}")[j]
        front = {"summary": "xsspay " + p("summary"), "tags": ["xsspay", p("tag")]}
        if j % 4 == 0:
            front["category"] = p("category")
        body = (f"xsspay intro {p('body')}\n\n{p('raw')}\n\n## {p('heading')}\n\n"
                f"xsspay snippet text {p('text')} xsspay\n\n{xss_markdown_body(f'md{j}')}\n")
        srv.write(f"xss/p{j}.md", md("xsspay " + p("title"), body, **front))
        ids.append(f"xss/p{j}")
    # A payload as the article id (it ends up in URLs and data attributes).
    srv.write("xss/idpayload.md", md("xsspay id payload", "xsspay body", id="xss/\"><svg onload=window.__xss='id'>"))
    srv.write("plain.md", md("Plain article", "Nothing to see. xsspay"))
    srv.start()
    hits = srv.hits("xsspay", limit=50) or []
    cat.check(len(hits) >= payload_count, "sanity: the payload articles are indexed", len(hits))
    categories = sorted({h.get("category") for h in hits if h.get("category")})

    # Without a browser, the API itself: no live markup in the HTML it serves.
    for ident in ids:
        art = srv.http.get(f"/api/v1/articles/{ident}").json() or {}
        html_text = art.get("html", "")
        # Only real tags count: escaped payload text is harmless.
        tags = re.findall(r"<[a-zA-Z][^>]*>", html_text)
        bad = [t for t in tags if re.match(r"<(script|iframe|object|embed|base|meta|form|style|link|svg|math)\b", t, re.I)
               or re.search(r"\son\w+\s*=|(href|src|action|data)\s*=\s*[\"']?\s*(javascript|vbscript|data:text)", t, re.I)]
        cat.check(not bad, f"API html of {ident} carries live markup", bad[:5])

    q = urllib.parse.quote
    base = f"http://{HOST}:{srv.port}"
    pages = ["/", "/search?q=xsspay", "/search?q=xsspay+snippet", f"/categories/{q('Plain', safe='')}"]
    pages += [f"/articles/{i}" for i in ids]
    if hits:
        pages.append(hits[0]["url"])
    pages += [f"/categories/{q(cname, safe='')}" for cname in categories]
    pages += [f"/search?q=xsspay&category={q(cname)}" for cname in categories[:2]]
    queries = xss_payloads("query")
    if run.quick:
        queries = queries[::3]
    pages += [f"/search?q={q(p)}" for p in queries]
    pages += [f"/search?q=xsspay+{q(p)}" for p in queries[:6]]
    pages += [f"/articles/{q(xss_payloads('nf')[1])}", f"/categories/{q(xss_payloads('nfc')[3], safe='')}",
              f"/agent?session={q(xss_payloads('session')[3])}"]
    idp = next((h["url"] for h in hits if "id payload" in h.get("title", "")), None)
    if idp:
        pages.append(idp)
    modes = [False] if run.quick else [False, True]

    wd = WebDriver(run, chromium, driver)
    try:
        for bypass in modes:
            wd.bypass_csp(bypass)
            mode = "CSP bypassed" if bypass else "with CSP"
            for page in pages:
                try:
                    wd.goto(base + page)
                    if run.args.self_test:  # a page that lets one payload through
                        wd.js("const d=document.createElement('div');d.innerHTML=arguments[0];"
                              "document.body.appendChild(d)", xss_payloads("selftest")[1])
                    time.sleep(0.25)  # deferred script, live results
                    found = wd.js(DETECT_JS)
                    problems = xss_problems(found)
                except RuntimeError as e:
                    problems = [f"browser error: {e}"]
                problems += page_console_problems(wd, bypass)
                cat.check(not problems, f"{mode} {shorten(urllib.parse.unquote(page), 100)}", problems)
            # Live results: type into the search box as a customer would.
            typed = ["xsspay", "xsspay snippet"] + [xss_payloads("live")[k] for k in (0, 1, 3, 14)]
            for text in typed:
                try:
                    wd.goto(base + "/")
                    box = wd.find("#q")
                    if not box:
                        cat.check(False, "sanity: the home page has a search box #q")
                        break
                    wd.type(box, text)
                    wait_until(lambda: wd.js("const r=document.getElementById('results');"
                                             "return r && !r.hidden && r.textContent.length > 0"), 4, 0.1)
                    time.sleep(0.3)
                    shown = wd.js("return document.querySelectorAll('#results a').length")
                    if text.startswith("xsspay"):
                        cat.check(bool(shown), f"sanity: live results appear for {text!r}", shown)
                    problems = xss_problems(wd.js(DETECT_JS))
                except RuntimeError as e:
                    problems = [f"browser error: {e}"]
                problems += page_console_problems(wd, bypass)
                cat.check(not problems, f"{mode} live search {shorten(text, 80)!r}", problems)
            # The agent panel: suggestions include internal-looking payloads.
            try:
                wd.goto(base + "/agent")
                wd.js("sessionStorage.setItem('rapport.agentKey', arguments[0])", srv.agent_key)
                wd.goto(base + "/agent")
                box = wd.find("#transcript")
                if box:
                    wd.type(box, "Customer: xsspay snippet " + xss_payloads("agent")[1] + "\n")
                    wait_until(lambda: wd.js("return document.querySelectorAll('#suggestions li').length"), 5, 0.1)
                    shown = wd.js("return document.querySelectorAll('#suggestions li').length")
                    cat.check(bool(shown), "sanity: the agent panel shows suggestions", shown)
                problems = xss_problems(wd.js(DETECT_JS))
            except RuntimeError as e:
                problems = [f"browser error: {e}"]
            problems += page_console_problems(wd, bypass)
            cat.check(not problems, f"{mode} agent panel", problems)
            # The detector itself: a payload placed in the DOM by hand must be seen.
            wd.goto(base + "/")
            wd.js("const d=document.createElement('div');d.innerHTML=arguments[0];document.body.appendChild(d)",
                  xss_payloads("probe")[1])
            time.sleep(0.2)
            seen = xss_problems(wd.js(DETECT_JS))
            wd.logs()
            cat.check(bool(seen), f"sanity: the detector sees a planted payload ({mode})", seen)
            if bypass:
                ran = (wd.js("return window.__xss || null"))
                cat.check(ran == "probe", "sanity: with the CSP bypassed a planted payload runs", ran)
    finally:
        wd.close()
    srv.stop()


# --------------------------------------------------------------------------
# 3. Traversal and odd ids


def traversal_ids(outside_abs: str, quick: bool) -> list[str]:
    targets = ["etc/passwd", "outside/secret.md", "outside/secret", "secret.md", "index/meta.json",
               "rapport.toml", "data/session-salt"]
    ups = ["../", "..%2f", "..%2F", "%2e%2e/", "%2e%2e%2f", ".%2e/", "%2e./", "..\\", "..%5c", "%2e%2e%5c",
           "....//", "..;/", "%252e%252e%252f", "%c0%ae%c0%ae/", "..%c0%af", "%ef%bc%8e%ef%bc%8e/", "..%00/",
           "./../", "%2e%2e%u2215", "..%e2%88%95"]
    depths = (1, 3) if quick else (1, 2, 4, 8)
    if quick:
        targets = targets[:4]
    out = [u * d + t for t in targets for u in ups for d in depths]
    out += [
        "/etc/passwd", "//etc/passwd", "%2fetc%2fpasswd", "%2F%2Fetc%2Fpasswd", urllib.parse.quote(outside_abs, safe=""),
        outside_abs.lstrip("/"), "file:%2f%2f%2fetc%2fpasswd", "~", "~root%2f.bashrc", "pub%00", "pub%00.md", "pub.md",
        "pub%00..%2f..%2fetc%2fpasswd", "%00", "pub/", "pub/.", "pub/..", "sub/../pub", "sub/%2e%2e/pub", "sub%2f..%2fpub",
        ".", "..", "...", "%2e", "%2e%2e", "a" * 1000, "a" * 8000, "a/" * 2000, "%2e%2e/" * 2000,
        "%C3%BCn%C3%AFc%C3%B8d%C3%A9", "%E6%97%A5%E6%9C%AC%E8%AA%9E", "%E2%80%AEdm.bup", "%F0%9F%98%80",
        "%ff", "%fe%ff", "%c0%af", "%ed%a0%80", "%f4%90%80%80", "%0d%0aX-Injected:%20yes", "%0a", "%09",
        "pub%23frag", "pub%3fq=1", "pub;jsessionid=1", "CON", "aux.md", "pub%20", "%20pub", "*", "%3f", "%23",
        "evil", "evil.md", "sub/inner", "sub/inner.md", "SUB/INNER", "Pub", "pub%2f", "%2fpub",
        "..\\..\\..\\etc\\passwd", "\\etc\\passwd", "C:%5cwindows%5cwin.ini",
    ]
    return out


def cat_traversal(run: Run, cat: Category) -> None:
    srv = run.server("traversal")
    secret = canary("outside")
    outside = srv.root / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text(md(f"Outside {secret}", f"{secret} text"))
    (srv.root / "secret.md").write_text(md(f"Sibling {secret}", f"{secret} text"))
    srv.write("pub.md", md("Public page tvpublic", "Public text tvpublic.\n"))
    srv.write("sub/inner.md", md("Inner page tvinner", "Inner text.\n"))
    srv.write("idtrav.md", md("Traversal id article tvidtrav", "Inside the folder.\n", id="../outside/secret"))
    if run.args.self_test:
        os.link(outside / "secret.md", srv.articles / "evil.md")  # served: the checks must notice
    else:
        os.symlink(outside / "secret.md", srv.articles / "evil.md")
    os.symlink("../outside", srv.articles / "outdir")
    srv.start()
    listed = srv.listing() or []
    cat.check({"pub", "sub/inner"} <= set(listed), "sanity: the inside articles are indexed", listed)
    known_titles = {"pub": "tvpublic", "sub/inner": "tvinner"}
    for ident in listed:
        if ident not in known_titles:
            known_titles[ident] = "tvidtrav"
    forbidden = [secret, "root:x:0:0", '"segments"', "opstamp", "index_settings", "agent_keys"] + run.forbidden_paths()

    def judge(label: str, path_bytes: bytes, resp: Resp, portal: bool, parseable: bool = True):
        request_text = urllib.parse.unquote(path_bytes.decode("latin-1")).lower()
        target = path_bytes.split(b"?")[0]
        if resp.status is None:
            cat.check(False, f"{label}: no response", resp.error)
            return
        cat.check(resp.status < 500, f"{label}: server error", resp)
        body = resp.text.lower()
        leaked = [f for f in forbidden if f.lower() in body and f.lower() not in request_text]
        cat.check(not leaked, f"{label}: content from outside the articles folder", leaked)
        cat.check("x-injected" not in resp.headers, f"{label}: header injection", resp.headers)
        article_route = target.startswith((b"/articles/", b"/api/v1/articles/"))
        if resp.status == 200:
            if not article_route:
                cat.check(True, label)
            elif portal:
                ok = any(t in resp.text for t in known_titles.values()) and "text/html" in resp.ctype()
                cat.check(ok, f"{label}: 200 that is not a known article", shorten(resp.text, 200))
            else:
                data = resp.json()
                ok = isinstance(data, dict) and data.get("id") in known_titles
                cat.check(ok, f"{label}: 200 that is not a known article", shorten(resp.text, 200))
            return
        # `/articles/{*id}` takes any path, `/categories/{name}` one segment:
        # those are portal pages and answer with the not-found page; a path
        # that matches no route gets the API's JSON 404.
        rest = target.split(b"/", 2)[2] if target.count(b"/") >= 2 else b""
        portal_route = portal and resp.status not in (414, 431) and bool(rest) and (
            target.startswith(b"/articles/") or (target.startswith(b"/categories/") and b"/" not in rest))
        page = resp.status == 404 and "text/html" in resp.ctype() and 'class="not-found"' in resp.text
        if portal_route and parseable:
            cat.check(page, f"{label}: portal answer is not the not-found page", resp)
        elif portal_route and page:
            cat.check(True, label)
        else:
            problem = error_shape_problem(resp)
            cat.check(problem is None and 400 <= resp.status < 500, f"{label}: not a 4xx JSON error", problem or resp)

    ids = traversal_ids(str(outside / "secret.md"), run.quick)
    prefixes = [("/api/v1/articles/", False), ("/articles/", True), ("/categories/", True)]
    port = srv.port
    count = 0
    for ident in ids:
        for prefix, portal in prefixes:
            if prefix == "/categories/" and ident.count("/") > 3 and run.quick:
                continue
            path = (prefix + ident).encode("latin-1", "replace")
            r = raw(port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=10)
            judge(f"GET {shorten(prefix + ident, 90)}", path, r, portal)
            count += 1
    # Other routes and request-target forms.
    extra = [b"/assets/../../etc/passwd", b"/assets/..%2f..%2fetc%2fpasswd", b"/assets/portal.js/../../../etc/passwd",
             b"/../../etc/passwd", b"/%2e%2e/%2e%2e/etc/passwd", b"//etc/passwd", b"/api/v1/../../etc/passwd",
             b"/api/v1/sessions/..%2f..%2fetc%2fpasswd", b"/api/v1/articles", b"/api/v1/articles?category=..%2f..",
             b"/api/v1/search?q=..%2f..%2fetc%2fpasswd", b"/search?q=..%2f..%2fetc%2fpasswd",
             b"/api/v1/search?q=%00", b"/search?q=%ff", b"/search?q=%00", b"/api/v1/search?q=%ff",
             b"/categories/..", b"/categories/%2e%2e", b"/articles/", b"/articles", b"/categories/"]
    for path in extra:
        portal = path.startswith((b"/articles", b"/categories"))
        r = raw(port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        judge(f"GET {path.decode()}", path, r, portal)
    # Unparseable or odd request lines: the HTTP parser's own JSON error.
    for line, portal in [(b"GET /api/v1/articles/pub\x00 HTTP/1.1", False), (b"GET /articles/pub\x00 HTTP/1.1", True),
                         (b"GET /articles/" + b"a" * 70000 + b" HTTP/1.1", True),
                         (b"GET /api/v1/articles/" + b"%2e%2e/" * 12000 + b" HTTP/1.1", False),
                         (b"GET http://127.0.0.1/../../etc/passwd HTTP/1.1", False),
                         (b"GET ../../etc/passwd HTTP/1.1", False), (b"GET * HTTP/1.1", False),
                         (b"GET /api/v1/articles/\xff\xfe HTTP/1.1", False), (b"GET /articles/\xc3\xbc HTTP/1.1", True),
                         (b"GET /api/v1/articles/..\\..\\etc\\passwd HTTP/1.0", False)]:
        r = raw(port, line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
        target = line.split(b" ")[1] if line.count(b" ") >= 2 else line
        judge(f"{shorten(line.decode('latin-1'), 90)!r}", target, r, portal, parseable=False)
    # A bounded random walk over mixed encodings.
    rng = run.rng
    parts = ["..", "%2e%2e", ".%2e", "%2e.", "sub", "pub", "outside", "secret.md", "etc", "passwd", "%00", "%5c",
             "\\", ".", "%2f", "inner", "index", "meta.json", "%c0%ae", "~", "%ff"]
    seps = ["/", "%2f", "%2F", "\\", "%5c", "//"]
    for _ in range(run.n(900, 150)):
        ident = "".join(rng.choice(parts) + rng.choice(seps) for _ in range(rng.randint(1, 7))) + rng.choice(parts)
        prefix, portal = rng.choice(prefixes)
        path = (prefix + ident).encode("latin-1", "replace")
        r = raw(port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        judge(f"GET {shorten(prefix + ident, 90)}", path, r, portal)
    health = raw(port, request_bytes("GET", "/health"))
    cat.check(health.status == 200, "the server still answers /health", health)
    cat.note(f"{count} traversal ids on 3 routes")
    srv.stop()


# --------------------------------------------------------------------------
# 4. Bad bodies


def bad_json_bodies() -> list[bytes]:
    return [b"{", b"}", b"{\"question\":", b"{\"question\": \"x\"", b"[]", b"null", b"\"str\"", b"123", b"true",
            b"", b" ", b"{'question': 'x'}", b"{\"question\": \"x\",}", b"{\"question\": \"x\"} trailing",
            b"\xef\xbb\xbf{\"question\": \"x\"}", b"{\"question\": \"\xff\xfe\"}", b"\xff\xfe{\x00}\x00",
            b"{\"question\": \"\\ud800\"}", b"{\"question\": \"\\u0000\"}", b"{\"question\": \"x\", \"question\": \"y\"}",
            b"{\"question\": 1e999}", b"{\"question\": -0}", b"{\"__proto__\": {\"x\": 1}}", b"\x00\x00\x00\x00",
            b"{\"question\": \"x\"}\x00", b"{\"question\"\n:\n\"x\"\n}", b"NaN", b"{\"a\":NaN}", b"<xml/>",
            b"question=x", b"--boundary\r\n\r\n"]


def wrong_type_bodies(endpoint: str) -> list[object]:
    if endpoint.endswith("/answer"):
        return [{"question": 1}, {"question": None}, {"question": []}, {"question": {}}, {"question": ""},
                {"question": "   "}, {}, {"q": "x"}, {"question": "x", "context": "x"}, {"question": "x", "context": []},
                {"question": "x", "context": {"product": 5}}, {"question": "x", "session_id": 5},
                {"question": "x", "max_chars": -1}, {"question": "x", "max_chars": 1e300},
                {"question": "x", "max_chars": "9"}, {"question": "x", "customer_id": []}, {"question": "x", "extra": 1},
                {"question": "x" * 60000}]
    if endpoint.endswith("/suggest"):
        return [{"transcript": "x"}, {"transcript": [1]}, {"transcript": [{"role": "bogus", "text": "x"}]},
                {"transcript": [{"role": "customer"}]}, {"transcript": [{"role": "customer", "text": 5}]},
                {"transcript": []}, {}, {"transcript": None}, {"transcript": [{"role": "customer", "text": "x"}], "limit": -1},
                {"transcript": [{"role": "customer", "text": "x"}], "limit": "5"},
                {"transcript": [{"role": "customer", "text": "x"}], "exclude": "x"},
                {"transcript": [{"role": "customer", "text": "x"}] * 3000}]
    return [{"query_id": 1, "article_id": "x", "event": "click"}, {"query_id": "x", "article_id": "x", "event": "bogus"},
            {"query_id": "x", "article_id": "x"}, {"event": "click"}, {}, {"query_id": None, "article_id": None, "event": None},
            {"query_id": "x", "article_id": "x", "event": "click", "comment": 5},
            {"query_id": "x", "article_id": "x", "event": "helpful", "comment": "c" * 60000}]


def expect_continue(port: int, path: str, auth: dict, cat: Category) -> Resp:
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in auth.items())
            + "Expect: 100-continue\r\nContent-Length: 10485760\r\nConnection: close\r\n\r\n").encode()
    started = time.monotonic()
    sock = open_raw(port, head)
    if sock is None:
        return Resp(error="connect")
    try:
        sock.settimeout(5)
        try:
            first = sock.recv(65536)
        except OSError as e:
            return Resp(error=f"recv: {e}")
        if not first.startswith(b"HTTP/1.1 100"):
            status, headers = _parse_head(first.split(b"\r\n\r\n")[0])
            return Resp(status, headers, first.split(b"\r\n\r\n", 1)[-1], elapsed=time.monotonic() - started)
        cat.note(f"{path}: `100 Continue` for a declared 10 MiB body over the 64 KiB limit (413 comes after the upload)")
        data = bytearray(first.split(b"\r\n\r\n", 1)[1])
        chunk = b"a" * 65536
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ)
        for _ in range(160):
            try:
                sock.sendall(chunk)
            except OSError:
                break
            if sel.select(0):
                break
        sel.close()
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in data:
                got = sock.recv(65536)
                if not got:
                    break
                data += got
            head_end = data.find(b"\r\n\r\n")
            status, headers = _parse_head(bytes(data[:head_end]))
            length = int(headers.get("content-length", "0") or 0)
            while len(data) < head_end + 4 + length:
                got = sock.recv(65536)
                if not got:
                    break
                data += got
            return Resp(status, headers, bytes(data[head_end + 4: head_end + 4 + length]),
                        elapsed=time.monotonic() - started)
        return Resp(error="no final response after the body", elapsed=time.monotonic() - started)
    finally:
        sock.close()


def cat_bodies(run: Run, cat: Category) -> None:
    config = {"request_timeout_secs": 2}
    if run.args.self_test:
        config.update(request_timeout_secs=30, max_body_bytes=16 * 1024 * 1024)
    srv = run.server("bodies", config)
    srv.write("a.md", md("Refund policy", "Refunds take five days.\n"))
    srv.start()
    port = srv.port
    timeout_s = 2.0
    agent = {"Authorization": f"Bearer {srv.agent_key}"}
    admin = {"Authorization": f"Bearer {srv.admin_key}"}
    endpoints = [("/api/v1/answer", {}), ("/api/v1/suggest", agent), ("/api/v1/feedback", {})]

    def expect(label: str, resp: Resp, status=None, allow_ok: bool = False, within: float | None = None):
        """status: an exact status, a tuple of statuses, or None for any 4xx."""
        if resp.status is None:
            cat.check(False, f"{label}: no response", resp.error)
            return
        if within is not None:
            cat.check(resp.elapsed <= within, f"{label}: answered after {resp.elapsed:.1f} s (limit {within:.1f} s)")
        if allow_ok and resp.status < 400:
            cat.check(resp.status < 300, f"{label}: unexpected {resp.status}", resp)
            return
        if status is None:
            ok_status = 400 <= resp.status < 500
        elif isinstance(status, tuple):
            ok_status = resp.status in status
        else:
            ok_status = resp.status == status
        cat.check(ok_status, f"{label}: status {resp.status}, expected {status or '4xx'}", resp)
        if resp.status >= 400:
            problem = error_shape_problem(resp)
            cat.check(problem is None, f"{label}: error body", problem)

    def post(path, body: bytes, headers=None, ctype="application/json"):
        h = dict(headers or {})
        if ctype is not None:
            h["Content-Type"] = ctype
        return raw(port, request_bytes("POST", path, h, body), timeout=15)

    rounds = run.n(3, 1)
    for _ in range(rounds):
        for path, auth in endpoints:
            for body in bad_json_bodies():
                # A few of these are valid JSON after all: any answer but a 5xx.
                lenient = body in (b"{\"question\"\n:\n\"x\"\n}", b"{\"question\": \"\\u0000\"}",
                                   b"{\"question\": \"\\ud800\"}")
                expect(f"POST {path} {shorten(body, 50)!r}", post(path, body, auth), allow_ok=lenient)
            for body in wrong_type_bodies(path):
                data = json.dumps(body).encode()
                big = len(data) > 64 * 1024
                expect(f"POST {path} {shorten(data, 60)}", post(path, data, auth),
                       status=413 if big else None, allow_ok=not big)
            valid = json.dumps({"question": "refund", "transcript": [{"role": "customer", "text": "refund"}],
                                "query_id": "x", "article_id": "a", "event": "click"}).encode()
            for ctype in [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                          "application/xml", "application/json; charset=utf-16", "text/json", "application/jsonx",
                          "json", "*/*", "application/json\t;", "APPLICATION/JSON"]:
                expect(f"POST {path} content-type {ctype!r}", post(path, valid, auth, ctype=ctype),
                       allow_ok=ctype in ("APPLICATION/JSON", "application/json\t;"))
            # Huge bodies: 413 with the JSON error, never a reset.
            for size in (64 * 1024 + 1, 1024 * 1024, 8 * 1024 * 1024):
                filler = b"{\"question\": \"" + b"a" * (size - 16) + b"\"}"
                req = request_bytes("POST", path, dict(auth, **{"Content-Type": "application/json"}), b"")
                req = req.replace(b"\r\n\r\n", f"\r\nContent-Length: {len(filler)}\r\n\r\n".encode(), 1)
                chunks = [req] + [filler[i:i + 65536] for i in range(0, len(filler), 65536)]
                expect(f"POST {path} {len(filler)} bytes", raw(port, chunks, timeout=20), status=413)
            head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + "".join(f"{k}: {v}\r\n" for k, v in auth.items())
                    + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
            chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
            expect(f"POST {path} chunked 256 KiB", raw(port, [head] + [chunk] * 4 + [b"0\r\n\r\n"], timeout=20), status=413)
            # Expect: 100-continue with a declared body over the limit: a 413
            # at once, or (hyper asks for the body) a 413 once it is sent.
            expect(f"POST {path} Expect: 100-continue, 10 MiB", expect_continue(port, path, auth, cat), status=413)
            # Deep nesting below the size limit: a parse error, not a crash.
            for depth in (1000, 30000):
                body = b"{\"question\": " + b"[" * depth + b"]" * depth + b"}"
                expect(f"POST {path} nested {depth} deep", post(path, body, auth))
                body = b"{\"a\":" * depth + b"1" + b"}" * depth
                if len(body) < 64 * 1024:
                    expect(f"POST {path} nested objects {depth} deep", post(path, body, auth))
            # A declared body that never (fully) arrives: 408 within the request timeout.
            base = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + "".join(
                f"{k}: {v}\r\n" for k, v in auth.items())
            expect(f"POST {path} Content-Length 100, 12 bytes sent",
                   raw(port, (base + "Content-Length: 100\r\n\r\n{\"question\":").encode(), timeout=timeout_s + 6),
                   status=408, within=timeout_s + 1.5)
            expect(f"POST {path} chunked, first chunk only",
                   raw(port, (base + "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"que\r\n").encode(), timeout=timeout_s + 6),
                   status=408, within=timeout_s + 1.5)
            expect(f"POST {path} body trickling a byte every 0.3 s",
                   raw(port, [(base + "Content-Length: 40\r\n\r\n").encode()] + [b" "] * 20, pause=0.3,
                       timeout=timeout_s + 8), status=408, within=timeout_s + 2.5)
            # Content-Length framing.
            for cl in ["-5", "abc", "1, 2", "99999999999999999999", "0x10", "+5", " 5 5", "5\x00"]:
                expect(f"POST {path} Content-Length {cl!r}",
                       raw(port, (base + f"Content-Length: {cl}\r\nConnection: close\r\n\r\n12345").encode("latin-1")),
                       status=(400, 413))
            expect(f"POST {path} two different Content-Lengths",
                   raw(port, (base + "Content-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\n123456").encode()),
                   status=400)
            expect(f"POST {path} Content-Length and chunked",
                   raw(port, (base + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                              "0\r\n\r\n").encode()), allow_ok=True)
            expect(f"POST {path} bad chunk size",
                   raw(port, (base + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n").encode()),
                   status=400)
            expect(f"POST {path} Transfer-Encoding gzip",
                   raw(port, (base + "Transfer-Encoding: gzip\r\nConnection: close\r\n\r\nabc").encode()), status=None)
    # Limits of the HTTP parser: 414 and 431 with the JSON body.
    expect("URI of 70 KB", raw(port, f"GET /api/v1/search?q={'a' * 70000} HTTP/1.1\r\nHost: x\r\n\r\n".encode()), status=414)
    expect("URI of 70 KB on the portal", raw(port, f"GET /search?q={'a' * 70000} HTTP/1.1\r\nHost: x\r\n\r\n".encode()), status=414)
    expect("150 headers", raw(port, ("GET /health HTTP/1.1\r\nHost: x\r\n" + "".join(
        f"X-H{i}: v\r\n" for i in range(150)) + "\r\n").encode()), status=431)
    expect("one 1 MB header", raw(port, ("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + "b" * 1_000_000 + "\r\n\r\n").encode(),
                                    timeout=15), status=431)
    expect("a 300 KB cookie on an API route", raw(port, ("GET /api/v1/search?q=x HTTP/1.1\r\nHost: x\r\nCookie: " + "c" * 300_000
                                                         + "\r\n\r\n").encode(), timeout=15), status=431, allow_ok=True)
    # Request lines and headers the parser refuses.
    for label, data in [("garbage", b"GARBAGE\r\n\r\n"), ("method only", b"GET\r\n\r\n"),
                        ("HTTP/9.9", b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n"),
                        ("TLS hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40),
                        ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
                        ("header without colon", b"GET /health HTTP/1.1\r\nHost x\r\n\r\n"),
                        ("space in header name", b"GET /health HTTP/1.1\r\nHo st: x\r\n\r\n"),
                        ("NUL in header value", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
                        ("obs-fold header", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
                        ("NUL in the path", b"GET /api/v1/se\x00arch HTTP/1.1\r\nHost: x\r\n\r\n"),
                        ("bare LF", b"GET /health HTTP/1.1\nHost: x\n\n"),
                        ("control characters in the path", b"GET /api/v1/search?q=\x01\x02 HTTP/1.1\r\nHost: x\r\n\r\n")]:
        r = raw(port, data, timeout=10)
        if r.status is not None and r.status < 400:
            cat.check(True, label)
        elif r.status is None and label in ("TLS hello", "HTTP/2 preface") and r.closed is not None:
            cat.check(True, label)  # not HTTP/1 at all: closing is the answer
        else:
            expect(label, r, status=(400, 505))
    # Methods and routes.
    for method, path in [("PUT", "/api/v1/search?q=x"), ("DELETE", "/api/v1/articles/a"), ("PATCH", "/api/v1/answer"),
                         ("GET", "/api/v1/answer"), ("POST", "/api/v1/search?q=x"), ("FOO", "/api/v1/search?q=x"),
                         ("TRACE", "/"), ("PUT", "/articles/a"), ("DELETE", "/"), ("POST", "/health"), ("POST", "/ready"),
                         ("DELETE", "/metrics"), ("PUT", "/openapi.json"), ("CONNECT", "/")]:
        expect(f"{method} {path}", raw(port, request_bytes(method, path)), status=(405, 404, 400))
    for path in ["/api/v1/search?q=", "/api/v1/search", "/api/v1/search?q=x&limit=-1", "/api/v1/search?q=x&limit=abc",
                 "/api/v1/search?q=x&limit=99999999999999999999", "/api/v1/search?q=x&offset=-1", "/api/v1/autocomplete", "/api/v1/autocomplete?q=x&limit=1e3",
                 "/api/v1/articles?limit=-5", "/api/v1/articles?offset=x", "/api/v1/articles/%ff"]:
        expect(f"GET {path}", raw(port, request_bytes("GET", path)))
    for path in ["/api/v1/search?q=%ff", "/api/v1/search?q[]=x", "/api/v1/search?q=x&q=y", "/api/v1/search?q=%00"]:
        expect(f"GET {path}", raw(port, request_bytes("GET", path)), allow_ok=True)
    for path in ["/api/v1/analytics/summary?from=garbage", "/api/v1/analytics/queries?kind=bogus",
                 "/api/v1/analytics/summary?channel=bogus", "/api/v1/analytics/articles?to=2026-13-45"]:
        expect(f"GET {path} (admin)", raw(port, request_bytes("GET", path, admin)))
    expect("GET a 10 KB session id (agent)", raw(port, request_bytes("GET", "/api/v1/sessions/" + "s" * 10000, agent)),
           status=404)
    # A bounded fuzz: mutated valid bodies; anything but a 5xx, errors in shape.
    rng = run.rng
    seeds = [json.dumps({"question": "where is my refund", "session_id": "s1", "context": {"product": "web"}}).encode(),
             json.dumps({"transcript": [{"role": "customer", "text": "refund"}], "limit": 3}).encode(),
             json.dumps({"query_id": "q", "article_id": "a", "event": "click", "comment": "c"}).encode()]
    alphabet = b"{}[]\":,\\ \x00\xff\xc3a1-eE.\n"
    for _ in range(run.n(1200, 200)):
        i = rng.randrange(3)
        data = bytearray(seeds[i])
        for _ in range(rng.randint(1, 6)):
            op = rng.randrange(4)
            pos = rng.randrange(len(data) + 1)
            if op == 0 and data:
                del data[pos: pos + rng.randint(1, 5)]
            elif op == 1:
                data[pos:pos] = bytes([rng.choice(alphabet)])
            elif op == 2 and data:
                data[min(pos, len(data) - 1)] = rng.randrange(256)
            else:
                data = data[:pos]
        path, auth = endpoints[i]
        expect(f"fuzz POST {path} {shorten(bytes(data), 60)!r}", post(path, bytes(data), auth), allow_ok=True)
    r = raw(port, request_bytes("GET", "/health"))
    cat.check(r.status == 200, "the server still answers /health", r)
    srv.stop()


# --------------------------------------------------------------------------
# 5. Slow clients


def open_raw(port: int, first: bytes = b"", source: str | None = None) -> socket.socket | None:
    try:
        sock = socket.create_connection((HOST, port), timeout=10, source_address=(source, 0) if source else None)
    except OSError:
        return None
    if first:
        with contextlib.suppress(OSError):
            sock.sendall(first)
    return sock


def watch_closes(socks: list[socket.socket], limit: float, trickle: bytes = b"", every: float = 0.0) -> list[float | None]:
    """Reads every socket until the server closes it or `limit` seconds pass;
    returns when each one closed (None: still open). With `trickle`, sends it
    on every still-open socket each `every` seconds (a slowloris)."""
    started = time.monotonic()
    closed: list[float | None] = [None] * len(socks)
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
    next_trickle = started + every
    while time.monotonic() - started < limit and any(c is None for c in closed):
        timeout = 0.05
        for key, _ in sel.select(timeout):
            i = key.data
            try:
                data = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                closed[i] = time.monotonic() - started
                sel.unregister(key.fileobj)
        if trickle and time.monotonic() >= next_trickle:
            next_trickle += every
            for i, s in enumerate(socks):
                if closed[i] is None:
                    with contextlib.suppress(OSError):
                        s.send(trickle)
    sel.close()
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()
    return closed


def metric(text: str, name: str, labels: str = "") -> float | None:
    m = re.search(rf"^{re.escape(name + labels)}\s+([0-9.e+-]+)\s*$", text, re.M)
    return float(m.group(1)) if m else None


def cat_slow(run: Run, cat: Category) -> None:
    header_s, idle_s, request_s, cap = 2, 4, 2, 64
    config = {"header_read_timeout_secs": header_s, "idle_timeout_secs": idle_s,
              "request_timeout_secs": request_s, "max_connections": cap}
    if run.args.self_test:
        config.update(header_read_timeout_secs=30, idle_timeout_secs=60, max_connections=4096)
    srv = run.server("slow", config)
    srv.write("a.md", md("Refund policy", "Refunds take five days.\n"))
    srv.start()
    port = srv.port
    admin = {"Authorization": f"Bearer {srv.admin_key}"}
    slack = 1.5

    def metrics_text() -> str:
        r = raw(port, request_bytes("GET", "/metrics", admin), timeout=15)
        return r.text if r.status == 200 else ""

    def open_count() -> float | None:
        return metric(metrics_text(), "rapport_http_open_connections")

    # Wait until only our metrics connection is open.
    wait_until(lambda: (open_count() or 99) <= 1, 10, 0.1)
    before = metrics_text()
    closed_before = metric(before, "rapport_http_connections_closed_total", '{reason="header_timeout"}') or 0

    n = run.n(12, 6)
    results: dict[str, list] = {}

    def group(name, socks, limit, **kw):
        results[name] = watch_closes([s for s in socks if s], limit, **kw)

    half = [open_raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ") for _ in range(n)]
    loris = [open_raw(port, b"G") for _ in range(n // 2)]
    silent = [open_raw(port) for _ in range(n // 2)]
    idle = []
    for _ in range(n // 2):
        s = open_raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        if s:
            s.settimeout(5)
            with contextlib.suppress(OSError):
                s.recv(65536)  # the response; then silence on a keep-alive connection
        idle.append(s)
    slow_body = [open_raw(port, b"POST /api/v1/answer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                b"Content-Length: 1000\r\n\r\n{") for _ in range(n // 3)]
    threads = [
        threading.Thread(target=group, args=("half-sent headers", half, 12)),
        threading.Thread(target=group, args=("slowloris (a header byte every 0.4 s)", loris, 12),
                         kwargs={"trickle": b"E", "every": 0.4}),
        threading.Thread(target=group, args=("connected, nothing sent", silent, idle_s + 8)),
        threading.Thread(target=group, args=("idle keep-alive", idle, idle_s + 8)),
        threading.Thread(target=group, args=("body trickling a byte every 0.3 s", slow_body, 12),
                         kwargs={"trickle": b" ", "every": 0.3}),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bounds = {"half-sent headers": (0, header_s + slack), "slowloris (a header byte every 0.4 s)": (0, header_s + slack),
              "connected, nothing sent": (idle_s - 1.5, idle_s + slack),
              "idle keep-alive": (idle_s - 1.5, idle_s + slack),
              "body trickling a byte every 0.3 s": (0, request_s + slack + 0.5)}
    for name, closes in results.items():
        lo, hi = bounds[name]
        for t in closes:
            cat.check(t is not None and lo <= t <= hi, f"{name}: closed after "
                      + ("never (still open)" if t is None else f"{t:.1f} s") + f", expected {lo:.1f}–{hi:.1f} s")

    # A slow reader: pipelined requests whose responses are never read.
    reader = open_raw(port, b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * 400)
    time.sleep(idle_s + 3)
    count = open_count()
    cat.check(count is not None and count <= 1, "a client that never reads its responses is still connected after "
              f"{idle_s + 3} s", f"open connections {count}")
    if reader:
        reader.close()

    # More slow connections than max_connections: a normal client is served once slots free.
    wait_until(lambda: (open_count() or 99) <= 1, 10, 0.1)
    for label, first, hold in [("half-sent", b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ", header_s),
                               ("silent", b"", idle_s)]:
        crowd = [open_raw(port, first) for _ in range(cap + run.n(60, 20))]
        time.sleep(0.3)
        r = raw(port, request_bytes("GET", "/api/v1/search?q=refund"), timeout=hold + 10)
        cat.check(r.status == 200 and r.elapsed <= hold + 3,
                  f"{len(crowd)} {label} connections over a cap of {cap}: a normal client waited "
                  f"{r.elapsed:.1f} s (limit {hold + 3} s)", r)
        during = open_count()
        cat.check(during is not None and during <= cap, f"open connections {during} exceed max_connections {cap}")
        # Those the server accepted are closed by it; the rest it never took.
        closes = watch_closes([s for s in crowd if s], hold + 6)
        cat.check(sum(1 for t in closes if t is not None) >= min(cap, len(crowd)) - 2,
                  f"{label} crowd: the server closed {sum(1 for t in closes if t is not None)} of its {cap} slots",
                  "")
    # The gauge and counters in /metrics, for the admin key only.
    ok = wait_until(lambda: (open_count() or 99) <= 1, 15, 0.2)
    final = metrics_text()
    cat.check(bool(ok), "rapport_http_open_connections returns to 1 (just this request)",
              metric(final, "rapport_http_open_connections"))
    timeouts = (metric(final, "rapport_http_connections_closed_total", '{reason="header_timeout"}') or 0) - closed_before
    cat.check(timeouts >= n, f"header_timeout closes counted: {timeouts}, expected ≥ {n}")
    cat.check(metric(final, "rapport_http_connections_closed_total", '{reason="idle"}') is not None,
              "idle closes counted in /metrics")
    r = raw(port, request_bytes("GET", "/metrics"))
    cat.check(r.status == 401 and error_shape_problem(r) is None, "/metrics without a key", r)
    srv.stop()


# --------------------------------------------------------------------------
# 6. Rate limits


def loopback_sources(count: int) -> list[str]:
    """Distinct client addresses on loopback (127.0.0.0/8 is all local on
    Linux), so each check gets a bucket of its own."""
    out = []
    for i in range(count):
        addr = f"127.0.{(i // 200) + 1}.{(i % 200) + 10}"
        try:
            with socket.socket() as s:
                s.bind((addr, 0))
            out.append(addr)
        except OSError:
            break
    return out


def cat_rate(run: Run, cat: Category) -> None:
    per_second, burst = 2, 6
    config = {"rate_limit_per_second": per_second, "rate_limit_burst": burst}
    if run.args.self_test:
        config["trust_forwarded_for"] = True
    srv = run.server("rate", config)
    srv.write("billing/a.md", md("Refund policy", "Refunds take five days.\n", category="Billing"))
    srv.start()
    sources = iter(loopback_sources(200))
    n = run.n(40, 20)

    def fresh() -> str:
        addr = next(sources, None)
        if addr is None:
            time.sleep(burst / per_second + 0.5)  # no more addresses: wait for a refill
            return HOST
        return addr

    def burst_run(label: str, make, count: int = n, source: str | None = None, upper: bool = True,
                  lower: int | None = None):
        """Sends `count` requests back to back; checks how many got through."""
        source = source or fresh()
        client = Http(srv.port, source=source)
        allowed = 0
        statuses = {}
        started = time.monotonic()
        for i in range(count):
            method, path, headers, body = make(i)
            r = client.request(method, path, body=body, headers=headers)
            statuses[r.status] = statuses.get(r.status, 0) + 1
            if r.status == 429:
                problem = error_shape_problem(r)
                retry = r.headers.get("retry-after", "")
                if problem or not retry.isdigit():
                    cat.check(False, f"{label}: 429 without the JSON error or Retry-After", problem or r.headers)
            elif r.status is not None:
                allowed += 1
        elapsed = time.monotonic() - started
        client.close()
        cat.attempts(count - 1 - (lower is not None and upper))
        bound = burst + int(per_second * elapsed) + 1
        if upper:
            cat.check(allowed <= bound, f"{label}: {allowed} of {count} allowed (bound {bound} for a burst of "
                      f"{burst} + {per_second}/s over {elapsed:.1f} s)", statuses)
        if lower is not None:
            cat.check(allowed >= lower, f"{label}: only {allowed} of {count} allowed, expected ≥ {lower}", statuses)
        return allowed

    get = lambda path, headers=None: (lambda i: ("GET", path, headers(i) if headers else {}, None))
    routes = ["/", "/search?q=refund", "/articles/billing/a", "/categories/Billing", "/agent",
              "/api/v1/search?q=refund", "/api/v1/articles", "/api/v1/status", "/api/v1/autocomplete?q=ref",
              "/api/v1/articles/billing/a"]
    # Sanity: one client, no header — limited, and not below the burst.
    burst_run("no Authorization header", get("/api/v1/search?q=refund"), lower=burst)
    for path in routes:
        burst_run(f"random Bearer keys on {path}", get(path, lambda i: {"Authorization": f"Bearer {rand_token('k', 16)}"}))
    burst_run("random answer POSTs with random keys", lambda i: (
        "POST", "/api/v1/answer", {"Authorization": f"Bearer {rand_token('k')}"}, {"question": "refund"}))
    junk = ["Basic " + rand_token("", 12), "Bearer", "Bearer ", "xyz", "Bearer \u00e9\u00e8", "bearer  ", "Token abc",
            "Bearer " + "a" * 5000]
    burst_run("malformed Authorization headers", get("/api/v1/search?q=refund", lambda i: {"Authorization": junk[i % len(junk)]}))
    burst_run("malformed Authorization headers on the portal", get("/", lambda i: {"Authorization": junk[i % len(junk)]}))
    spoof = lambda i: f"{random.randint(1, 223)}.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    burst_run("random X-Forwarded-For (not trusted)", get("/api/v1/search?q=refund",
                                                          lambda i: {"X-Forwarded-For": spoof(i)}))
    burst_run("random X-Forwarded-For on the portal", get("/search?q=refund", lambda i: {"X-Forwarded-For": spoof(i)}))
    burst_run("random X-Real-IP / Forwarded", get("/api/v1/search?q=refund", lambda i: {
        "X-Real-IP": spoof(i), "Forwarded": f"for={spoof(i)}", "X-Client-IP": spoof(i), "True-Client-IP": spoof(i)}))
    # One valid key, written with different spacing: one bucket (which is the key's).
    key = srv.extra_agent_keys[0]
    spacings = [f"Bearer {key}", f"Bearer  {key}", f"Bearer {key}  ", f"bearer {key}", f"Bearer \t{key}",
                f"Bearer   {key}   "]
    burst_run("one agent key with different spacing", get("/api/v1/search?q=refund", lambda i: {
        "Authorization": spacings[i % len(spacings)]}), lower=burst)
    # The same key from many addresses is still one bucket.
    key2 = srv.extra_agent_keys[1]
    allowed = 0
    started = time.monotonic()
    for i in range(n):
        r = Http(srv.port, source=fresh()).get("/api/v1/search?q=refund", key=key2)
        allowed += r.status == 200
    bound = burst + int(per_second * (time.monotonic() - started)) + 1
    cat.check(allowed <= bound, f"one agent key from {n} addresses: {allowed} allowed (bound {bound})")
    # A valid key's bucket is its own: exhausting the address's bucket doesn't block it.
    addr = fresh()
    burst_run("exhaust an address", get("/api/v1/search?q=refund"), source=addr)
    burst_run("then a valid key from that address", get("/api/v1/search?q=refund", lambda i: {
        "Authorization": f"Bearer {srv.extra_agent_keys[2]}"}), source=addr, count=burst, lower=burst)
    # Probes are never limited.
    for path, headers in [("/health", {}), ("/ready", {}), ("/metrics", {"Authorization": f"Bearer {srv.admin_key}"})]:
        burst_run(f"{path} is never limited", get(path, lambda i, h=headers: h), count=n, upper=False, lower=n)
    srv.stop()

    # Behind a trusted proxy, X-Forwarded-For is the client: each forged
    # address is a new bucket (the documented trade-off), the same one isn't.
    trusting = run.server("rate-trusted", {"rate_limit_per_second": per_second, "rate_limit_burst": burst,
                                           "trust_forwarded_for": True})
    trusting.write("a.md", md("Refund policy", "Refunds.\n"))
    trusting.start()
    srv = trusting
    burst_run("trusted proxy: random X-Forwarded-For", get("/api/v1/search?q=refund",
                                                          lambda i: {"X-Forwarded-For": spoof(i)}), upper=False, lower=n - 1)
    burst_run("trusted proxy: one X-Forwarded-For", get("/api/v1/search?q=refund",
                                                       lambda i: {"X-Forwarded-For": "203.0.113.9"}), lower=burst)
    trusting.stop()


# --------------------------------------------------------------------------
# 7. Concurrency with kill -9


def crash_body(ident: str, version: int, token: str) -> str:
    return md(f"Crash {ident} {token}",
              f"Version {version} of {ident}.\n\nRefund invoice charge text.\n\n## Details\n\nMore {token} text.\n")


def verify_folder(srv: Server, cat: Category, folder: dict, stale: dict, context: str) -> None:
    """The index equals the folder: every file listed, at its version, its
    title searchable; nothing deleted or superseded still served."""
    listed = srv.listing()
    expected = sorted(folder)
    cat.check(listed is not None and sorted(listed) == expected, f"{context}: listing differs from the folder",
              f"extra {sorted(set(listed or []) - set(expected))[:5]}, missing {sorted(set(expected) - set(listed or []))[:5]}")
    for ident, (version, token) in folder.items():
        art = srv.http.get(f"/api/v1/articles/{ident}", key=srv.admin_key)
        text = (art.json() or {}).get("markdown", "")
        cat.check(art.status == 200 and f"Version {version} of {ident}." in text,
                  f"{context}: {ident} is not at version {version}", shorten(text, 80) if art.status == 200 else art)
        hits = srv.hits(token) or []
        cat.check(any(h["id"] == ident and token in h.get("title", "") for h in hits),
                  f"{context}: the title of {ident} ({token}) is not searchable", [h["id"] for h in hits])
    for token, ident in list(stale.items())[-25:]:
        hits = srv.hits(token) or []
        bad = [h["id"] for h in hits if token in h.get("title", "")]
        cat.check(not bad, f"{context}: superseded or deleted title {token} ({ident}) still served", bad)
    for ident in [i for i in set(stale.values()) if i not in folder][:10]:
        r = srv.http.get(f"/api/v1/articles/{ident}", key=srv.admin_key)
        cat.check(r.status == 404, f"{context}: deleted {ident} still served", r)


def cat_kill(run: Run, cat: Category) -> None:
    srv = run.server("kill")
    rng = run.rng
    files = 30
    folder: dict[str, tuple[int, str]] = {}
    stale: dict[str, str] = {}
    version = 0
    for i in range(files // 2):
        ident = f"k/a{i}"
        version += 1
        token = rand_token("kq", 10, rng)
        srv.write(f"{ident}.md", crash_body(ident, version, token))
        folder[ident] = (version, token)
    kills = run.n(5, 2)
    load_seconds = run.n((3.0, 7.0), (1.5, 3.0))
    durable_sessions: set[str] = set()
    last_queries = 0
    for round_no in range(kills + 1):
        mark = srv.log_mark()
        t0 = time.monotonic()
        try:
            srv.start(ready_timeout=60)
        except RuntimeError as e:
            cat.check(False, f"restart {round_no}: the server did not start after kill -9", e)
            return
        cat.check(True, f"restart {round_no}")
        context = f"after kill {round_no}" if round_no else "first start"
        verify_folder(srv, cat, folder, stale, context)
        st = srv.status()
        cat.check(st.get("skipped_files", 0) == 0, f"{context}: files skipped", st.get("skipped"))
        bad_log = [l for l in srv.logs_since(mark) if "unreadable" in l or "panicked" in l or "corrupt" in l.lower()]
        cat.check(not bad_log, f"{context}: the index or data was found damaged", bad_log[:2])
        summary = srv.http.get("/api/v1/analytics/summary", key=srv.admin_key)
        queries = (summary.json() or {}).get("queries")
        cat.check(summary.status == 200 and isinstance(queries, int) and queries >= last_queries,
                  f"{context}: analytics lost recorded queries ({queries} < {last_queries})", summary)
        last_queries = queries if isinstance(queries, int) else last_queries
        for sid in sorted(durable_sessions)[:20]:
            r = srv.http.get(f"/api/v1/sessions/{sid}", key=srv.agent_key)
            cat.check(r.status == 200, f"{context}: session {sid}, stored before the kill, is gone", r)
        # Sessions visible now come from the database: they must survive the next kill.
        if round_no:
            for sid in list(pending_sessions)[:30]:
                if srv.http.get(f"/api/v1/sessions/{sid}", key=srv.agent_key).status == 200:
                    durable_sessions.add(sid)
        if round_no == kills:
            break
        if run.args.self_test and round_no == 1:
            # A file removed behind the script's back: the next check must see it.
            ident = next(iter(folder))
            (srv.articles / f"{ident}.md").unlink()
        # Load: searches, answers with sessions and feedback, autocomplete,
        # while files are created, edited and deleted; then SIGKILL.
        stop = threading.Event()
        killed = threading.Event()
        pending_sessions: list[str] = []
        counters = {"requests": 0}
        lock = threading.Lock()

        def reader(worker: int):
            client = Http(srv.port, timeout=10)
            n = 0
            while not stop.is_set():
                n += 1
                kind = n % 4
                tokens = [t for _, t in folder.values()]
                if kind == 0:
                    r = client.get(f"/api/v1/search?q={rng.choice(tokens)}+refund&limit=5")
                elif kind == 1:
                    sid = f"r{round_no}w{worker}n{n}"
                    r = client.post("/api/v1/answer", {"question": "refund invoice charge", "session_id": sid})
                    body = r.json() or {}
                    if r.status == 200 and body.get("answer"):
                        with lock:
                            pending_sessions.append(sid)
                        client.post("/api/v1/feedback", {"query_id": body["query_id"],
                                                         "article_id": body["answer"]["article_id"],
                                                         "event": rng.choice(["helpful", "not_helpful", "click"])})
                elif kind == 2:
                    r = client.get(f"/api/v1/autocomplete?q={rng.choice(tokens)[:5]}")
                else:
                    r = client.get("/search?q=refund")
                with lock:
                    counters["requests"] += 1
                if not killed.is_set():
                    cat.check(r.status is None or r.status < 500, "5xx under load", r)
                    if r.status is None and srv.proc.poll() is not None:
                        cat.check(False, "the server died under load", srv.tail(5))
                        return
            client.close()

        threads = [threading.Thread(target=reader, args=(w,), daemon=True) for w in range(3)]
        for t in threads:
            t.start()
        kill_at = time.monotonic() + rng.uniform(*load_seconds)
        ops = 0
        while True:
            now = time.monotonic()
            if now >= kill_at and not killed.is_set():
                killed.set()
                srv.kill9()
                after = rng.randint(0, 6)
            if killed.is_set():
                if after <= 0:
                    break
                after -= 1
            ops += 1
            ident = f"k/a{rng.randrange(files)}"
            path = srv.articles / f"{ident}.md"
            if rng.random() < 0.25 and ident in folder:
                path.unlink()
                stale[folder[ident][1]] = ident
                del folder[ident]
            else:
                version += 1
                token = rand_token("kq", 10, rng)
                text = crash_body(ident, version, token)
                if rng.random() < 0.5:
                    tmp = path.with_name(f".{path.name}.tmp")
                    tmp.write_text(text)
                    os.replace(tmp, path)  # an atomic save
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text)  # an in-place save
                if ident in folder:
                    stale[folder[ident][1]] = ident
                folder[ident] = (version, token)
            time.sleep(rng.uniform(0, 0.05))
        stop.set()
        for t in threads:
            t.join(10)
        cat.attempts(counters["requests"] + ops)
        cat.note(f"round {round_no}: {counters['requests']} requests, {ops} file operations, kill after "
                 f"{time.monotonic() - t0:.1f} s")
    ok = srv.stop()
    cat.check(ok, "a graceful stop (SIGTERM) finishes within 15 s")
    cat.check(bool(durable_sessions), "sanity: bot sessions were stored and re-read across kills")
    cat.note(f"{len(durable_sessions)} bot sessions re-read after later kills; {last_queries} analytics queries kept")


# --------------------------------------------------------------------------
# 8. Watcher abuse


def cat_watcher(run: Run, cat: Category) -> None:
    srv = run.server("watcher")
    for i in range(10):
        srv.write(f"w/base{i}.md", md(f"Base {i} {rand_token('wb')}", f"Base article {i}.\n"))
    outside = srv.root / "outside"
    (outside / "deep").mkdir(parents=True)
    out_canary = canary("wout")
    (outside / "o1.md").write_text(md(f"Outside {out_canary}", f"{out_canary}\n"))
    (outside / "deep" / "o2.md").write_text(md(f"Outside two {out_canary}", "x\n"))
    srv.start()
    admin = srv.admin_key
    probe_state = {"n": 0}

    def probe(limit: float = 1.0, label: str = "", wait: float = 15.0) -> float | None:
        """Edits another article and measures until the edit is searchable."""
        probe_state["n"] += 1
        token = rand_token("wp", 10)
        srv.write("w/probe.md", md(f"Probe {token}", f"Probe edit {probe_state['n']}.\n"))
        t0 = time.monotonic()
        found = wait_until(lambda: any(h["id"] == "w/probe" for h in (srv.hits(token) or [])), wait, 0.02)
        took = time.monotonic() - t0 if found else None
        if label:
            cat.check(took is not None and took <= limit, f"{label}: another article's edit took "
                      + (f"{took:.2f} s" if took is not None else f"more than {wait:.0f} s") + f" to be searchable (limit {limit} s)")
        return took

    def count() -> int | None:
        return srv.status().get("articles")

    def folder_ids() -> list[str]:
        """What the index should hold: text `.md` files, and file links that
        stay inside the folder; never through a folder link."""
        root = srv.articles.resolve()
        out = []
        for dirpath, _, filenames in os.walk(srv.articles):  # os.walk does not follow folder links
            for name in filenames:
                full = Path(dirpath) / name
                if not name.endswith(".md") or name.startswith("."):
                    continue
                real = full.resolve()
                if not real.is_file() or not real.is_relative_to(root):
                    continue
                try:
                    data = real.read_bytes()
                    data.decode("utf-8")
                except (OSError, UnicodeDecodeError):
                    continue
                if not data.strip() or b"\0" in data:
                    continue
                out.append(str(full.relative_to(srv.articles))[:-3])
        return sorted(out)

    def recover(label: str) -> None:
        """If the indexer is stuck, say so and start over without the bad files."""
        if probe(wait=20) is None:
            cat.check(False, f"{label}: the indexer is still stuck after 20 s; restarting the server")
            srv.kill9()
            for bad in list(srv.articles.glob("w/nest-*.md")) + list(srv.articles.glob("w/x*.md")):
                bad.unlink()
            srv.start()

    base_latency = probe()
    cat.check(base_latency is not None and base_latency < 1.0, "sanity: an edit is searchable within a second",
              base_latency)
    start_count = count()

    # Folder links created at run time are not followed.
    links = [("loop", "."), ("up", ".."), ("w/self", "../w"), ("ext", str(outside)), ("w/extdeep", str(outside / "deep"))]
    if run.args.self_test:
        shutil.copytree(srv.articles / "w", srv.articles / "copy")  # a real folder: the checks must notice it
    for name, target in links:
        os.symlink(target, srv.articles / name)
    probe()
    time.sleep(0.5)
    probe()
    ids = srv.listing() or []
    now_count = count()
    cat.check(now_count == start_count, "folder links: the article count changed", f"{start_count} → {now_count}")
    linked = [i for i in ids if i.split("/")[0] in ("loop", "up", "ext", "copy") or i.startswith(("w/self", "w/extdeep"))]
    cat.check(not linked, "folder links: articles served under a link", linked[:5])
    for path in ["/api/v1/articles/loop/w/base0", "/api/v1/articles/loop/loop/w/base0", "/api/v1/articles/ext/o1",
                 "/api/v1/articles/w/self/base0", "/articles/loop/w/base0"]:
        r = srv.http.get(path, key=admin)
        cat.check(r.status == 404, f"folder links: {path} is served", r)
    cat.check(not (srv.hits(out_canary) or []), "folder links: a file in a linked outside folder is searchable")
    # A file link to outside the folder is refused, one inside is fine.
    os.symlink(outside / "o1.md", srv.articles / "w/out.md")
    os.symlink("base1.md", srv.articles / "w/alias.md")
    probe()
    cat.check(not (srv.hits(out_canary) or []), "a file link to outside the folder is followed")
    for name, _ in links:
        os.unlink(srv.articles / name)
    os.unlink(srv.articles / "w/out.md")

    # A NUL-byte file, and other files that are not text.
    not_text = {"w/nul.md": b"\0" * 4096,
                "w/nul2.md": b"---\ntitle: Nul two\n---\nText\0with a NUL byte.\n",
                "w/utf16.md": "---\ntitle: Wide\n---\nWide text\n".encode("utf-16"),
                "w/latin1.md": "---\ntitle: Caf\xe9\n---\nCaf\xe9\n".encode("latin-1")}
    for rel, data in not_text.items():
        srv.write(rel, data)
    probe()
    time.sleep(0.3)
    ids = srv.listing() or []
    skipped = {s.get("path"): s.get("reason") for s in srv.status().get("skipped", [])}
    for rel in not_text:
        ident = rel[:-3]
        cat.check(ident not in ids, f"{rel} (not text) is an article", ident)
        cat.check(rel in skipped, f"{rel} (not text) is not listed as refused in the status", sorted(skipped)[:6])
        r = srv.http.get(f"/api/v1/articles/{ident}", key=admin)
        cat.check(r.status == 404, f"{rel} (not text) is served", shorten(r.text, 120))
    for rel in not_text:
        (srv.articles / rel).unlink()

    # Truncated to empty, then rewritten: the last good version stays.
    old_token, new_token = rand_token("wt", 10), rand_token("wt", 10)
    srv.write("w/trunc.md", md(f"Trunc {old_token}", "Good text.\n" * 50))
    wait_until(lambda: srv.hits(old_token), 5)
    (srv.articles / "w/trunc.md").write_bytes(b"")
    empty_seen = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.8:
        r = srv.http.get("/api/v1/articles/w/trunc", key=admin)
        text = (r.json() or {}).get("markdown", "")
        if r.status != 200 or "Good text." not in text:
            empty_seen.append((round(time.monotonic() - t0, 2), r.status, shorten(text, 40)))
        time.sleep(0.03)
    cat.check(not empty_seen, "a file truncated to empty: the last good version is not served meanwhile",
              empty_seen[:4])
    srv.write("w/trunc.md", md(f"Trunc {new_token}", "New text.\n"))
    took = wait_until(lambda: srv.hits(new_token), 3)
    cat.check(bool(took), "the rewritten file is searchable", new_token)
    # A large file written slowly: never served empty.
    big_token = rand_token("wg", 10)
    srv.write("w/big.md", md(f"Big {big_token}", "Old big.\n"))
    wait_until(lambda: srv.hits(big_token), 5)
    empties = []
    with open(srv.articles / "w/big.md", "w") as f:
        f.flush()
        for i in range(run.n(25, 10)):
            time.sleep(0.04)
            f.write(("---\ntitle: Big rewritten\n---\n" if i == 0 else "") + ("Line of text. " * 80 + "\n") * 20)
            f.flush()
            r = srv.http.get("/api/v1/articles/w/big", key=admin)
            text = (r.json() or {}).get("markdown", "")
            if r.status != 200 or not text.strip():
                empties.append((i, r.status))
    cat.check(not empties, "a large file caught while being written is served empty or not at all", empties[:4])

    # A FIFO named like an article: the server doesn't hang.
    os.mkfifo(srv.articles / "w/x.md")
    took = probe(limit=1.5, label="a FIFO named x.md")
    r = raw(srv.port, request_bytes("GET", "/health"), timeout=3)
    cat.check(r.status == 200, "the server answers while a FIFO sits in the folder", r)
    cat.check("w/x" not in (srv.listing() or []), "the FIFO is an article")
    if took is None:
        recover("FIFO")
    else:
        stopped = srv.stop()
        cat.check(stopped, "a graceful stop with a FIFO in the folder finishes within 15 s")
        try:
            srv.start(ready_timeout=30)
            cat.check(True, "a restart with a FIFO in the folder becomes ready")
        except RuntimeError as e:
            cat.check(False, "a restart with a FIFO in the folder becomes ready within 30 s", e)
            srv.kill9()
            (srv.articles / "w/x.md").unlink()
            srv.start()
    if (srv.articles / "w/x.md").exists():
        (srv.articles / "w/x.md").unlink()

    # Rename storms.
    storm_token = rand_token("ws", 10)
    srv.write("w/storm0.md", md(f"Storm {storm_token}", "Storm.\n"))
    name = "w/storm0.md"
    for i in range(1, run.n(300, 80)):
        new = f"w/storm{i}.md"
        os.rename(srv.articles / name, srv.articles / new)
        name = new
    a_token, b_token = rand_token("wa", 10), rand_token("wb", 10)
    srv.write("w/swap-a.md", md(f"Swap {a_token}", "A.\n"))
    srv.write("w/swap-b.md", md(f"Swap {b_token}", "B.\n"))
    for _ in range(run.n(101, 31)):  # odd: they end swapped
        os.rename(srv.articles / "w/swap-a.md", srv.articles / "w/swap-tmp.md")
        os.rename(srv.articles / "w/swap-b.md", srv.articles / "w/swap-a.md")
        os.rename(srv.articles / "w/swap-tmp.md", srv.articles / "w/swap-b.md")
    (srv.articles / "dirA").mkdir()
    for i in range(5):
        (srv.articles / "dirA" / f"d{i}.md").write_text(md(f"Dir {i} {rand_token('wd')}", "D.\n"))
    current = "dirA"
    for i in range(run.n(60, 20)):
        new = "dirB" if current == "dirA" else "dirA"
        os.rename(srv.articles / current, srv.articles / new)
        current = new
    time.sleep(0.3)
    probe()

    def settled():
        return sorted(srv.listing() or []) == folder_ids()

    ok = wait_until(settled, 5, 0.2)
    listed = srv.listing() or []
    expected = folder_ids()
    cat.check(bool(ok), "after the rename storms the index equals the folder",
              f"extra {sorted(set(listed) - set(expected))[:6]}, missing {sorted(set(expected) - set(listed))[:6]}")
    storm_hits = [h["id"] for h in (srv.hits(storm_token) or [])]
    cat.check(storm_hits == [name[:-3]], "rename storm: the title is served under the last name only", storm_hits)
    cat.check([h["id"] for h in (srv.hits(a_token) or [])] == ["w/swap-b"]
              and [h["id"] for h in (srv.hits(b_token) or [])] == ["w/swap-a"], "swap storm: contents and ids mixed up")
    # Many files at once, then none.
    many = run.n(400, 100)
    for i in range(many):
        srv.write(f"many/m{i}.md", md(f"Many {i}", "M.\n"))
    ok = wait_until(lambda: len([i for i in (srv.listing() or []) if i.startswith("many/")]) == many, 15, 0.3)
    cat.check(bool(ok), f"{many} files created at once are all indexed within 15 s")
    shutil.rmtree(srv.articles / "many")
    ok = wait_until(lambda: not [i for i in (srv.listing() or []) if i.startswith("many/")], 15, 0.3)
    cat.check(bool(ok), f"{many} files deleted at once are all gone within 15 s")

    # Deeply nested Markdown, last: on a server without a parse budget it
    # holds the indexer for a long time.
    nests = [("50,000 >", ">" * 50000 + " deep\n"),
             ("25,000 nested list items", "- " * 25000 + "deep\n"),
             ("50,000 [", "[" * 50000 + "deep\n"),
             ("20,000 nested <div>", "<div>" * 20000 + "deep" + "</div>" * 20000 + "\n"),
             ("30,000 *", "*a " * 30000 + "\n")]
    if run.quick:
        nests = nests[:2]
    for label, body in nests:
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        path = srv.articles / f"w/nest-{slug}.md"
        data = md(f"Nested {label}", body)
        # Written in pieces, as a slow editor or a copy would.
        with open(path, "w") as f:
            for i in range(0, len(data), len(data) // 4 + 1):
                f.write(data[i: i + len(data) // 4 + 1])
                f.flush()
                time.sleep(0.02)
        time.sleep(0.06)
        took = probe(limit=1.0, label=f"a {len(data) // 1000} KB file of {label}", wait=20)
        r = raw(srv.port, request_bytes("GET", "/health"), timeout=5)
        cat.check(r.status == 200 and r.elapsed < 1, f"{label}: /health answers promptly", r)
        if took is None:
            recover(label)
    ok = wait_until(lambda: srv.hits("nested") is not None and probe(wait=5) is not None, 30, 0.5)
    st = srv.status()
    cat.check(bool(ok) and st.get("ready"), "the server is still indexing after the nested files", st.get("degraded"))
    srv.stop()


# --------------------------------------------------------------------------
# Main


def pick_binary(path: str | None) -> Path | None:
    if path:
        p = Path(path).resolve()
        return p if p.is_file() else None
    for rel in ("target/release/rapport", "target/debug/rapport"):
        p = REPO / rel
        if p.is_file():
            return p
    return None


def parse_only(text: str | None) -> list[str]:
    keys = [k for k, _ in CATEGORIES]
    if not text:
        return keys
    chosen = []
    for part in text.split(","):
        part = part.strip().lower()
        if part.isdigit() and 1 <= int(part) <= len(keys):
            chosen.append(keys[int(part) - 1])
        elif part in keys:
            chosen.append(part)
        else:
            raise SystemExit(f"--only: unknown category {part!r} (use 1-8 or {', '.join(keys)})")
    return [k for k in keys if k in chosen]


def summary_table(run: Run, chosen: list[str]) -> str:
    rows = ["| category | tries | failures |", "|---|---:|---:|"]
    total_tries = total_failures = 0
    for key in chosen:
        cat = run.categories[key]
        if cat.skipped:
            rows.append(f"| {cat.title} | skipped | – |")
            continue
        rows.append(f"| {cat.title} | {cat.tries:,} | {cat.failures:,} |")
        total_tries += cat.tries
        total_failures += cat.failures
    rows.append(f"| **total** | **{total_tries:,}** | **{total_failures:,}** |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", help="the rapport binary (default target/release/rapport, else target/debug/rapport)")
    parser.add_argument("--only", help="comma-separated categories: 1-8 or " + ",".join(k for k, _ in CATEGORIES))
    parser.add_argument("--quick", action="store_true", help="smaller loops (under 2 minutes)")
    parser.add_argument("--no-browser", action="store_true", help="skip category 2 (XSS in a browser)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (printed; default: time)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders and server logs")
    parser.add_argument("--self-test", action="store_true",
                        help="weaken the servers and expectations on purpose: every category must then fail "
                             "(shows that the checks bite)")
    args = parser.parse_args()
    binary = pick_binary(args.bin)
    if binary is None:
        print(f"rapport binary not found ({args.bin or 'target/release/rapport or target/debug/rapport'}); "
              "run `cargo build` first", file=sys.stderr)
        return 2
    args.bin = binary
    if args.seed is None:
        args.seed = int(time.time()) % 1_000_000
    chosen = parse_only(args.only)

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    run = Run(args)
    log(f"rapport attack: {binary} · seed {args.seed} · {'quick' if args.quick else 'full'} run · temp {run.tmp}")
    started = time.monotonic()
    interrupted = False
    try:
        for key in chosen:
            cat = run.categories[key]
            if key == "xss" and args.no_browser:
                cat.skipped = "--no-browser"
            if cat.skipped:
                log(f"[{cat.title}] skipped: {cat.skipped}")
                continue
            t0 = time.monotonic()
            log(f"[{cat.title}] …")
            try:
                globals()[f"cat_{key}"](run, cat)
            except KeyboardInterrupt:
                raise
            except Exception as e:
                cat.check(False, "harness error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}")
            finally:
                # Whatever a category started, it ends.
                for srv in run.servers:
                    with contextlib.suppress(Exception):
                        srv.kill9()
            cat.seconds = time.monotonic() - t0
            if cat.skipped:
                log(f"[{cat.title}] skipped: {cat.skipped}")
            else:
                log(f"[{cat.title}] {cat.tries} tries, {cat.failures} failures, {cat.seconds:.1f} s")
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted; cleaning up")
    finally:
        run.cleanup()
    log("")
    for key in chosen:
        cat = run.categories[key]
        if cat.examples or cat.notes:
            log(f"### {cat.title}")
            for note in cat.notes:
                log(f"- note: {note}")
            for example in cat.examples:
                log(f"- FAIL {example}")
            if cat.failures > len(cat.examples):
                log(f"- … and {cat.failures - len(cat.examples)} more")
            log("")
    log(f"Seed {args.seed}, {time.monotonic() - started:.0f} s, {'quick' if args.quick else 'full'} run.\n")
    log(summary_table(run, chosen))
    if interrupted:
        return 130
    failed = sum(run.categories[k].failures for k in chosen)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
