-- V2: per-database secrets the service generates itself (e.g. the key that signs page tokens,
-- so a token stays valid across restarts but cannot be forged or moved to another database).
CREATE TABLE service_keys (
    name       TEXT PRIMARY KEY,
    key        BLOB NOT NULL CHECK (length(key) = 32),
    created_at TEXT NOT NULL
) WITHOUT ROWID;
