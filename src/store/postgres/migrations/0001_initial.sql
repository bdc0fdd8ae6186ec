-- rapport's state on PostgreSQL: the same tables as on SQLite (times in
-- Unix milliseconds, lists as JSON text), shared by every replica. A `seq`
-- (or `id`) identity column, which SQLite does not have, stands for its
-- rowid: the order rows were written in, which breaks ties in ordered reads.

CREATE TABLE queries (
    query_id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    channel TEXT NOT NULL,
    query TEXT NOT NULL,
    filters TEXT NOT NULL,
    result_count BIGINT NOT NULL,
    top_ids TEXT NOT NULL,
    confidence DOUBLE PRECISION,
    handoff_reasons TEXT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    session_hash TEXT,
    auto_reply BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX queries_at ON queries(at_ms);
CREATE INDEX queries_session ON queries(session_hash);

CREATE TABLE feedback (
    query_id TEXT NOT NULL,
    article_id TEXT NOT NULL,
    event TEXT NOT NULL,
    comment TEXT,
    at_ms BIGINT NOT NULL,
    UNIQUE (query_id, article_id, event)
);
CREATE INDEX feedback_at ON feedback(at_ms);
CREATE INDEX feedback_query ON feedback(query_id);

CREATE TABLE session_events (
    session_hash TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    query_id TEXT,
    customer_hash TEXT,
    event TEXT NOT NULL,
    seq BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX session_events_session ON session_events(session_hash, at_ms);
CREATE INDEX session_events_at ON session_events(at_ms);
CREATE INDEX session_events_query ON session_events(query_id);
CREATE INDEX session_events_customer ON session_events(customer_hash, at_ms);

CREATE TABLE customer_votes (
    customer_hash TEXT NOT NULL,
    article_id TEXT NOT NULL,
    event TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (customer_hash, article_id)
);
CREATE INDEX customer_votes_at ON customer_votes(at_ms);

CREATE TABLE handoffs (
    id TEXT PRIMARY KEY,
    session_hash TEXT NOT NULL,
    session_id TEXT,
    status TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    claimed_ms BIGINT,
    claimed_by TEXT,
    closed_ms BIGINT,
    resolution TEXT,
    note TEXT,
    contact_name TEXT,
    contact_email TEXT,
    message TEXT,
    reasons TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    channel TEXT,
    seq BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX handoffs_status ON handoffs(status, created_ms);
CREATE INDEX handoffs_session ON handoffs(session_hash, created_ms);
CREATE INDEX handoffs_created ON handoffs(created_ms);
-- At most one open hand-off per session, whichever replica asks.
CREATE UNIQUE INDEX handoffs_open ON handoffs(session_hash) WHERE status <> 'closed';

CREATE TABLE outbox (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    body TEXT,
    created_ms BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    done_ms BIGINT,
    handoff_id TEXT,
    -- A worker took the event until then (FOR UPDATE SKIP LOCKED picks it).
    lease_until_ms BIGINT
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_ms);
CREATE INDEX outbox_handoff ON outbox(handoff_id);
-- The pending events in order: what every worker's lease reads first.
CREATE INDEX outbox_pending ON outbox(seq) WHERE state = 'pending';

CREATE TABLE delivery_attempts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id TEXT NOT NULL,
    event TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    status_code BIGINT,
    error TEXT,
    duration_ms BIGINT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX delivery_attempts_at ON delivery_attempts(at_ms);

CREATE TABLE ratings (
    session_hash TEXT PRIMARY KEY,
    score BIGINT NOT NULL,
    comment TEXT,
    at_ms BIGINT NOT NULL,
    seq BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX ratings_at ON ratings(at_ms);

CREATE TABLE admin_sessions (
    id_hash TEXT PRIMARY KEY,
    csrf TEXT NOT NULL,
    admin TEXT,
    created_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL
);
CREATE INDEX admin_sessions_seen ON admin_sessions(last_seen_ms);
