"""Drives a running rapport through a client generated from its own
/openapi.json (openapi-python-client), and validates every response against
the document with openapi-core, strictly: an object may not carry a field the
document does not declare, and a status or content type the document does
not list fails. Run by tests/api/contract.rs with:

    RAPPORT_URL, RAPPORT_DOCUMENT (the saved document), AGENT_KEY, ADMIN_KEY

Prints "checked N responses" and exits 0, or lists every violation and exits 1.
"""

import copy
import json
import os
import sys
from urllib.parse import parse_qs, urlsplit

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from rapport_client import AuthenticatedClient, Client
from rapport_client.types import Unset
from rapport_client.api.admins import analytics_articles, analytics_queries, analytics_summary, handoff_deliveries
from rapport_client.api.agents import (
    claim_handoff,
    close_handoff,
    get_handoff,
    get_session,
    list_handoffs,
    suggest,
)
from rapport_client.api.bots import answer
from rapport_client.api.customers import (
    autocomplete,
    feedback,
    get_article,
    get_handoff_status,
    list_articles,
    rate_session,
    request_handoff,
    search,
)
from rapport_client.api.operators import health, metrics, openapi_json, ready, status
from rapport_client.models import (
    AnswerRequest,
    AnswerResponse,
    CloseRequest,
    ContactRequest,
    Context,
    CustomerHandoff,
    HandoffRequest,
    HandoffStatus,
    HandoffView,
    RatingRequest,
    Resolution,
    ErrorBody,
    ErrorCode,
    FeedbackAccepted,
    FeedbackKind,
    FeedbackRequest,
    QueryReportKind,
    Role,
    SearchResponse,
    SessionView,
    SuggestRequest,
    Turn,
)

BASE = os.environ["RAPPORT_URL"]
AGENT_KEY = os.environ["AGENT_KEY"]
ADMIN_KEY = os.environ["ADMIN_KEY"]


def closed(document):
    """The document with every object schema closed to undeclared fields:
    the published document stays open (servers may add fields), but this
    server must not send a field it does not document. An `allOf` (a Rust
    `#[serde(flatten)]`) is closed as a whole with `unevaluatedProperties`,
    since closing its parts would make each refuse the others' fields."""
    schemas = document["components"]["schemas"]
    parts = set()

    def find_parts(node, in_all_of=False):
        if isinstance(node, dict):
            if in_all_of and "$ref" in node:
                parts.add(node["$ref"].rsplit("/", 1)[-1])
            for key, value in node.items():
                find_parts(value, key == "allOf" or (in_all_of and key not in ("properties", "items")))
        elif isinstance(node, list):
            for value in node:
                find_parts(value, in_all_of)

    find_parts(document)

    def close(node, name=None, in_all_of=False):
        if isinstance(node, dict):
            if "allOf" in node and "unevaluatedProperties" not in node:
                node["unevaluatedProperties"] = False
            elif (
                "properties" in node
                and "additionalProperties" not in node
                and not in_all_of
                and name not in parts
            ):
                node["additionalProperties"] = False
            for key, value in node.items():
                close(value, None, key == "allOf")
        elif isinstance(node, list):
            for value in node:
                close(value, None, in_all_of)

    for name, schema in schemas.items():
        close(schema, name)
    for path in document["paths"].values():
        close(path)
    return document


with open(os.environ["RAPPORT_DOCUMENT"]) as file:
    DOCUMENT = json.load(file)
SPEC = OpenAPI.from_dict(closed(copy.deepcopy(DOCUMENT)))


class CheckedRequest:
    """httpx's request in the shape openapi-core reads."""

    def __init__(self, request: httpx.Request):
        url = urlsplit(str(request.url))
        self.host_url = f"{url.scheme}://{url.netloc}"
        self.path = url.path
        self.method = request.method.lower()
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(url.query)),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict({}),
        )


class CheckedResponse:
    """httpx's response in the shape openapi-core reads."""

    def __init__(self, response: httpx.Response):
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(dict(response.headers))
        self.data = response.content


checked = []
violations = []


def check(response: httpx.Response):
    response.read()
    request = response.request
    where = f"{request.method} {request.url.path} -> {response.status_code}"
    try:
        SPEC.validate_response(CheckedRequest(request), CheckedResponse(response))
    except Exception as error:  # every kind of violation is reported the same way
        detail = getattr(error, "schema_errors", None) or getattr(error, "__cause__", None) or ""
        violations.append(f"{where}: {type(error).__name__}: {error} {str(detail)[:600]}")
    checked.append(where)


HOOKS = {"event_hooks": {"response": [check]}}
anonymous = Client(base_url=BASE, httpx_args=HOOKS, raise_on_unexpected_status=True)
agent = AuthenticatedClient(base_url=BASE, token=AGENT_KEY, httpx_args=HOOKS, raise_on_unexpected_status=True)
admin = AuthenticatedClient(base_url=BASE, token=ADMIN_KEY, httpx_args=HOOKS, raise_on_unexpected_status=True)


def expect(condition, message):
    if not condition:
        violations.append(message)


def expect_error(response, status, code, what):
    """A 4xx parses into the typed error model with the expected code."""
    expect(response.status_code == status, f"{what}: status {response.status_code}, expected {status}")
    expect(isinstance(response.parsed, ErrorBody), f"{what}: the error did not parse as ErrorBody: {response.parsed!r}")
    if isinstance(response.parsed, ErrorBody):
        expect(response.parsed.error.code == code, f"{what}: code {response.parsed.error.code}, expected {code}")
        expect(bool(response.parsed.error.message), f"{what}: an empty message")


# Operators.
expect(health.sync_detailed(client=anonymous).status_code == 200, "health")
expect(ready.sync_detailed(client=anonymous).parsed.ready is True, "ready")
public_status = status.sync(client=anonymous)
agent_status = status.sync(client=agent)
expect(isinstance(agent_status.internal_articles, int) and public_status.articles > 0, "status counts")
expect(isinstance(public_status.internal_articles, Unset), "anonymous status leaked the internal count")
expect(openapi_json.sync_detailed(client=anonymous).status_code == 200, "openapi.json")
scrape = metrics.sync_detailed(client=admin)
expect(scrape.status_code == 200 and "rapport_" in scrape.parsed, "metrics with the admin key")
expect_error(metrics.sync_detailed(client=agent), 403, ErrorCode.FORBIDDEN, "metrics with an agent key")

# Customers: search with filters, autocomplete, articles, feedback.
results = search.sync_detailed(client=anonymous, q="reset password", limit=5, session_id="contract-1")
expect(isinstance(results.parsed, SearchResponse) and results.parsed.hits, "search found nothing")
top = results.parsed.hits[0]
category = top.category if isinstance(top.category, str) else None
if category:
    filtered = search.sync(client=anonymous, q="password", category=category, limit=50)
    expect(
        all(hit.category == category or str(hit.category).startswith(category + "/") for hit in filtered.hits),
        f"category={category} let other categories through",
    )
expect_error(search.sync_detailed(client=anonymous, q="   "), 400, ErrorCode.MISSING_QUERY, "blank search")
expect_error(
    search.sync_detailed(client=anonymous, q="password", limit=2_000_000), 400, ErrorCode.INVALID_QUERY, "limit over the maximum"
)
stranger = AuthenticatedClient(base_url=BASE, token="not-a-key", httpx_args=HOOKS)
expect_error(search.sync_detailed(client=stranger, q="password"), 401, ErrorCode.UNAUTHORIZED, "unknown key")
typed = autocomplete.sync(client=anonymous, q="pass")
expect(typed.suggestions, "autocomplete suggested nothing")
listing = list_articles.sync(client=anonymous, limit=3)
expect(len(listing.articles) == 3 and listing.total >= 3, "list_articles")
article = get_article.sync_detailed(client=anonymous, id=top.id)
expect(article.status_code == 200 and article.parsed.id == top.id, f"get_article {top.id}")
expect_error(get_article.sync_detailed(client=anonymous, id="no/such-article"), 404, ErrorCode.NOT_FOUND, "unknown article")
vote = feedback.sync_detailed(
    client=anonymous,
    body=FeedbackRequest(query_id=results.parsed.query_id, article_id=top.id, event=FeedbackKind.CLICK),
)
expect(vote.status_code == 202 and isinstance(vote.parsed, FeedbackAccepted), "feedback")
expect_error(
    feedback.sync_detailed(
        client=anonymous, body=FeedbackRequest(query_id="no-such-query", article_id=top.id, event=FeedbackKind.HELPFUL)
    ),
    404,
    ErrorCode.NOT_FOUND,
    "feedback on an unknown query",
)

# Bots: an answer in a session, then the customer says it did not help.
reply = answer.sync_detailed(
    client=anonymous,
    body=AnswerRequest(question="How do I reset my password?", session_id="contract-2", context=Context(locale="en")),
)
expect(isinstance(reply.parsed, AnswerResponse), f"answer: {reply.status_code}")
if isinstance(reply.parsed, AnswerResponse) and reply.parsed.answer:
    feedback.sync(
        client=anonymous,
        body=FeedbackRequest(
            query_id=reply.parsed.query_id, article_id=reply.parsed.answer.article_id, event=FeedbackKind.NOT_HELPFUL
        ),
    )
expect_error(answer.sync_detailed(client=anonymous, body=AnswerRequest(question="  ")), 400, ErrorCode.MISSING_QUESTION, "blank question")

# Agents: suggestions from a transcript, the session's brief.
conversation = SuggestRequest(
    transcript=[Turn(role=Role.CUSTOMER, text="I can't log in, the password reset mail never arrives")],
    session_id="contract-2",
    limit=3,
)
suggested = suggest.sync(client=agent, body=conversation)
expect(suggested.suggestions, "suggest returned nothing")
expect_error(suggest.sync_detailed(client=anonymous, body=conversation), 401, ErrorCode.UNAUTHORIZED, "suggest without a key")
brief = get_session.sync_detailed(client=agent, session_id="contract-2")
expect(isinstance(brief.parsed, SessionView) and brief.parsed.brief, "session brief")
expect_error(get_session.sync_detailed(client=agent, session_id="never-seen"), 404, ErrorCode.NOT_FOUND, "unknown session")

# Customers ask for a person; an agent claims and closes; the customer rates.
asked = request_handoff.sync_detailed(
    client=anonymous,
    session_id="contract-2",
    body=HandoffRequest(contact=ContactRequest(name="Ada", email="ada@example.com"), message="still locked out"),
)
expect(asked.status_code == 201 and isinstance(asked.parsed, CustomerHandoff), f"request_handoff: {asked.status_code}")
handoff_id = asked.parsed.handoff_id
expect(asked.parsed.status == HandoffStatus.WAITING and asked.parsed.position == 1, "waiting, first in line")
expect_error(
    request_handoff.sync_detailed(client=anonymous, session_id="never-seen", body=HandoffRequest()),
    404,
    ErrorCode.NOT_FOUND,
    "hand-off for an unknown session",
)
expect_error(
    request_handoff.sync_detailed(
        client=anonymous, session_id="contract-2", body=HandoffRequest(contact=ContactRequest(email="nope"))
    ),
    400,
    ErrorCode.INVALID_BODY,
    "hand-off with a bad e-mail",
)
queue = list_handoffs.sync(client=agent, status=HandoffStatus.WAITING)
expect([h.handoff_id for h in queue.handoffs] == [handoff_id], "the queue lists the hand-off")
expect(queue.handoffs[0].brief and queue.handoffs[0].questions, "the queue carries the brief and the questions")
expect_error(list_handoffs.sync_detailed(client=anonymous), 401, ErrorCode.UNAUTHORIZED, "queue without a key")
claimed = claim_handoff.sync(client=agent, handoff_id=handoff_id)
expect(isinstance(claimed, HandoffView) and claimed.status == HandoffStatus.CLAIMED, "claim")
expect_error(claim_handoff.sync_detailed(client=admin, handoff_id=handoff_id), 409, ErrorCode.CONFLICT, "second claim")
closed_view = close_handoff.sync(client=agent, handoff_id=handoff_id, body=CloseRequest(resolution=Resolution.SOLVED, note="reset by hand"))
expect(closed_view.status == HandoffStatus.CLOSED, "close")
expect(get_handoff.sync(client=agent, handoff_id=handoff_id).note == "reset by hand", "get_handoff")
expect(get_handoff_status.sync(client=anonymous, session_id="contract-2").status == HandoffStatus.CLOSED, "customer status")
rated = rate_session.sync_detailed(client=anonymous, session_id="contract-2", body=RatingRequest(score=5, comment="thanks"))
expect(rated.status_code == 200, f"rating: {rated.status_code}")
expect_error(
    rate_session.sync_detailed(client=anonymous, session_id="contract-2", body=RatingRequest(score=9)),
    400,
    ErrorCode.INVALID_BODY,
    "rating out of range",
)
deliveries = handoff_deliveries.sync(client=admin)
expect(deliveries.webhook_configured is False and deliveries.pending == 0, "no webhook, nothing pending")

# Admins: reports.
summary = analytics_summary.sync(client=admin)
expect(summary.queries >= 1, "summary counted no queries")
expect(summary.csat.count == 1 and summary.csat.mean == 5, "summary: the rating")
expect(summary.handoffs.created == 1 and summary.handoffs.claimed == 1, "summary: the hand-off")
analytics_queries.sync(client=admin, kind=QueryReportKind.TOP, limit=10)
analytics_articles.sync(client=admin)
expect_error(analytics_summary.sync_detailed(client=agent), 403, ErrorCode.FORBIDDEN, "summary with an agent key")
# The typed client cannot send a malformed date; the same connection can.
raw = admin.get_httpx_client().get("/api/v1/analytics/summary", params={"from": "yesterday"})
expect(raw.status_code == 400, f"bad date: {raw.status_code}")
expect(ErrorBody.from_dict(raw.json()).error.code == ErrorCode.INVALID_TIME, "bad date: code")

if violations:
    print(f"{len(violations)} violation(s) in {len(checked)} responses:")
    for line in violations:
        print("  " + line)
    sys.exit(1)
print(f"checked {len(checked)} responses against the document: all conform")
