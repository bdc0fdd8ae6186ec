"""SQLite FTS5 (bm25) behind a small HTTP server, for the benchmark harness.

SQLite is an embedded library with no server of its own, so this wraps it in
Python's standard-library ThreadingHTTPServer (HTTP/1.1 keep-alive, one thread
per connection, one read-only connection per thread). sqlite3 releases the GIL
while a statement runs, but request parsing and JSON encoding hold it, so the
HTTP figures measure "SQLite + a thin Python layer"; the harness also reports
SQLite's in-process latency without HTTP.

    python3 sqlite_server.py build DB ARTICLES.jsonl
    python3 sqlite_server.py serve DB PORT
"""

import json
import re
import sqlite3
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORD = re.compile(r"[a-z0-9]+")
# Column weights for bm25(): id (unindexed), title, headings, summary, tags, body.
SEARCH_SQL = (
    "SELECT id, title, snippet(articles, 5, '<mark>', '</mark>', '…', 24) "
    "FROM articles WHERE articles MATCH ? ORDER BY bm25(articles, 0, 3, 2, 1.5, 1.5, 1) LIMIT ?"
)
SUGGEST_SQL = "SELECT id, title FROM articles WHERE articles MATCH ? ORDER BY bm25(articles, 0, 3, 0, 0, 0.5, 0) LIMIT ?"


def build(db_path, jsonl_path):
    db = sqlite3.connect(db_path)
    db.execute("DROP TABLE IF EXISTS articles")
    db.execute(
        "CREATE VIRTUAL TABLE articles USING fts5("
        "id UNINDEXED, title, headings, summary, tags, body, tokenize='porter unicode61 remove_diacritics 2')"
    )
    with open(jsonl_path, encoding="utf-8") as f, db:
        rows = (
            (a["id"], a["title"], a["headings"], a["summary"], " ".join(a["tags"]), a["body"])
            for a in map(json.loads, f)
        )
        db.executemany("INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.execute("INSERT INTO articles(articles) VALUES ('optimize')")
    db.commit()
    db.close()


def search_match(text):
    """Any of the words (OR), each quoted so FTS5 operators in the text are just words."""
    words = WORD.findall(text.lower())
    return " OR ".join(f'"{w}"' for w in words)


def suggest_match(text):
    """Title words, all required, the last one as a prefix (search-as-you-type)."""
    words = WORD.findall(text.lower())
    if not words:
        return ""
    terms = [f'"{w}"' for w in words[:-1]] + [f'"{words[-1]}"*']
    return "{title} : " + " AND ".join(terms)


class Searcher:
    """One read-only connection per thread (sqlite3 connections are not shared)."""

    def __init__(self, db_path):
        self.db_path = db_path
        self.local = threading.local()

    def conn(self):
        if not hasattr(self.local, "db"):
            self.local.db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, check_same_thread=False)
        return self.local.db

    def search(self, text, limit=10):
        match = search_match(text)
        if not match:
            return []
        return [
            {"id": i, "title": t, "snippet": s}
            for i, t, s in self.conn().execute(SEARCH_SQL, (match, limit))
        ]

    def suggest(self, text, limit=8):
        match = suggest_match(text)
        if not match:
            return []
        return [{"id": i, "title": t} for i, t in self.conn().execute(SUGGEST_SQL, (match, limit))]


def serve(db_path, port):
    searcher = Searcher(db_path)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body as one write, sent at once: with the default unbuffered
        # writer they went out as two segments, and Nagle held the second until the
        # client's delayed ACK, about 40 ms on every keep-alive request.
        wbufsize = 64 * 1024
        disable_nagle_algorithm = True

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            params = urllib.parse.parse_qs(url.query)
            q = params.get("q", [""])[0]
            limit = int(params.get("limit", ["10"])[0])
            if url.path == "/search":
                body = {"hits": searcher.search(q, limit)}
            elif url.path == "/autocomplete":
                body = {"suggestions": searcher.suggest(q, limit)}
            elif url.path == "/health":
                body = {"ok": True}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # wrk closes its connections mid-request when a run ends

    server = Server(("127.0.0.1", port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)
