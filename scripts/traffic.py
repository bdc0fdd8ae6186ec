#!/usr/bin/env python3
"""Realistic customer traffic against a running rapport, through its public API.

Fills the analytics a dashboard reads (searches, clicks, votes, answers,
hand-offs, agents' claims and closes, ratings) the way customers would,
so the dashboard and `rapport report` can be looked at on something other
than an empty database:

  * most customers want something the help center covers: an article is
    drawn from the corpus, and the customer types a few words of its title
    (a typo in one of them now and then) or asks the bot a question built
    from it. They click a result if the article is in the top five, and
    vote on it;
  * some want something it does not cover: their question is a real
    wording from another help center's judged queries (`--questions`, one
    JSON object per line with a "query", e.g. ../shared/eval/stackfaq).
    Those are the content gaps the dashboard should surface;
  * a customer whose answer did not help asks again, and then asks for a
    person; some sessions are rated. With `--agents-only SHARE`, agents
    claim and close that share of the waiting hand-offs instead
    (scripts/traffic-days runs that a few minutes and an hour later).

Nothing here is tuned to what rapport answers: the script only reports what
happened. Usage:

  scripts/traffic.py --url http://127.0.0.1:8080 --corpus ../shared/corpus/officedocs-support \
      --questions ../shared/eval/stackfaq/queries.jsonl --agent-key KEY --sessions 600
"""

import argparse
import json
import random
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

# Words a customer's search box query would leave out.
STOP = set("""a an and are as at be by can can't could do does don't for from get have how i i'd i'm
if in is it it's like me my need not of on or so some that the there this to use using want way
what when where which why will with would you your""".split())


def call(url, method="GET", body=None, key=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("content-type", "application/json")
    if key:
        request.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as error:
        return error.code, None


def titles(corpus):
    found = []
    for path in sorted(Path(corpus).rglob("*.md")):
        head = path.read_text(encoding="utf-8", errors="replace")[:2000]
        match = re.search(r"^title:\s*(.+)$", head, re.M)
        if match:
            found.append(match.group(1).strip().strip("'\""))
    return found


def typo(word, rng):
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def keywords(title, rng):
    words = [w for w in re.findall(r"[A-Za-z0-9']+", title.lower()) if w not in STOP]
    take = words[: rng.randint(2, 4)] or words
    if take and rng.random() < 0.2:
        j = max(range(len(take)), key=lambda k: len(take[k]))
        take[j] = typo(take[j], rng)
    return " ".join(take)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--corpus", required=True, help="the articles folder the server serves")
    p.add_argument("--questions", help="JSON lines with a 'query': wordings the corpus does not cover")
    p.add_argument("--agent-key", required=True)
    p.add_argument("--sessions", type=int, default=500)
    p.add_argument("--out-of-scope", type=float, default=0.25, help="share of customers asking what the corpus does not cover")
    p.add_argument("--seed", type=int, default=18)
    p.add_argument("--agents-only", type=float, metavar="SHARE",
                   help="no customers: agents claim and close this share of the waiting hand-offs")
    args = p.parse_args()
    rng = random.Random(args.seed)
    base = args.url.rstrip("/")
    if args.agents_only is not None:
        status, waiting = call(f"{base}/api/v1/handoffs?status=waiting&limit=500", key=args.agent_key)
        if status != 200:
            sys.exit(f"listing the queue failed: HTTP {status}")
        waiting = waiting["handoffs"]
        taken = [h["handoff_id"] for h in waiting if rng.random() < args.agents_only]
        for handoff in taken:
            close(base, handoff, rng, args.agent_key)
        print(json.dumps({"waiting": len(waiting), "claimed": len(taken)}))
        return
    known = titles(args.corpus)
    if not known:
        sys.exit(f"no articles with a title under {args.corpus}")
    outside = []
    if args.questions:
        outside = [json.loads(line)["query"] for line in open(args.questions, encoding="utf-8") if line.strip()]
    tally = {"searches": 0, "clicks": 0, "answers": 0, "helpful": 0, "not_helpful": 0, "handoffs": 0, "ratings": 0}
    handoffs = []
    for n in range(args.sessions):
        session = f"traffic-{args.seed}-{n}"
        title = rng.choice(known)
        out_of_scope = bool(outside) and rng.random() < args.out_of_scope
        if rng.random() < 0.6:  # the portal: a search, maybe a refined one
            text = keywords(rng.choice(outside), rng) if out_of_scope else keywords(title, rng)
            for attempt in range(2):
                q = urllib.parse.urlencode({"q": text, "session_id": session})
                status, found = call(f"{base}/api/v1/search?{q}")
                tally["searches"] += 1
                hits = (found or {}).get("hits", [])[:5]
                chosen = next((h for h in hits if h["title"] == title), None) if not out_of_scope else None
                if chosen is None and hits and rng.random() < 0.3:
                    chosen = hits[0]  # a hopeful click on the first result
                if chosen:
                    call(f"{base}/api/v1/feedback", "POST", {"query_id": found["query_id"], "article_id": chosen["id"], "event": "click"})
                    tally["clicks"] += 1
                    right = chosen["title"] == title and not out_of_scope
                    if rng.random() < 0.5:
                        event = "helpful" if right else "not_helpful"
                        call(f"{base}/api/v1/feedback", "POST", {"query_id": found["query_id"], "article_id": chosen["id"], "event": event})
                        tally[event] += 1
                    break
                text = keywords(title, rng) if not out_of_scope else keywords(rng.choice(outside), rng)
            continue
        # The chat widget: a question to the bot, again if it did not help, then a person.
        question = rng.choice(outside) if out_of_scope else rng.choice(["how do I fix ", "help with ", "", "problem with "]) + keywords(title, rng)
        solved = False
        for attempt in range(2):
            status, answered = call(f"{base}/api/v1/answer", "POST", {"question": question, "session_id": session})
            tally["answers"] += 1
            if status != 200 or not answered or not answered.get("answer"):
                break
            article = answered["answer"]["article_id"]
            right = answered["answer"]["title"] == title and not out_of_scope
            event = "helpful" if right else "not_helpful"
            call(f"{base}/api/v1/feedback", "POST", {"query_id": answered["query_id"], "article_id": article, "event": event})
            tally[event] += 1
            if right:
                solved = True
                call(f"{base}/api/v1/feedback", "POST", {"query_id": answered["query_id"], "article_id": article, "event": "resolved"})
                break
            # Asked again in other words, as customers do when the answer missed.
            question = keywords(question if out_of_scope else title, rng)
        if not solved and rng.random() < 0.7:
            status, made = call(f"{base}/api/v1/sessions/{session}/handoff", "POST", {"message": question[:500]})
            if status in (200, 201) and made:
                handoffs.append(made["handoff_id"])
                tally["handoffs"] += 1
        if rng.random() < 0.4:
            score = rng.choice([4, 5, 5]) if solved else rng.choice([1, 2, 3, 4])
            if call(f"{base}/api/v1/sessions/{session}/rating", "POST", {"score": score})[0] == 200:
                tally["ratings"] += 1
    print(json.dumps(tally))


def close(base, handoff, rng, key):
    """An agent claims the hand-off and closes it, usually solved."""
    if call(f"{base}/api/v1/handoffs/{handoff}/claim", "POST", key=key)[0] == 200:
        resolution = rng.choice(["solved", "solved", "solved", "not_solved", "duplicate"])
        call(f"{base}/api/v1/handoffs/{handoff}/close", "POST", {"resolution": resolution}, key=key)


if __name__ == "__main__":
    main()
