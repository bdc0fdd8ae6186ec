-- Values every replica must agree on, set by the first one to start (the
-- salt of session and customer hashes).
CREATE TABLE rapport_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
