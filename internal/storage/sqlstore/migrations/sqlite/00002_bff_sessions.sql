-- +goose Up
-- Sessions of the Backend-for-Frontend gateway (castellan bff). The cookie
-- value is stored only as its SHA-256; tokens are sealed by the gateway.
CREATE TABLE bff_sessions (
    id_hash           BLOB PRIMARY KEY,
    subject           TEXT NOT NULL,
    sid               TEXT NOT NULL DEFAULT '',
    tokens            BLOB NOT NULL,
    access_expires_at BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    last_active_at    BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL
);
CREATE INDEX bff_sessions_sid ON bff_sessions (sid);
CREATE INDEX bff_sessions_subject ON bff_sessions (subject);
CREATE INDEX bff_sessions_last_active ON bff_sessions (last_active_at);
CREATE INDEX bff_sessions_expires ON bff_sessions (expires_at);

-- +goose Down
DROP TABLE bff_sessions;
