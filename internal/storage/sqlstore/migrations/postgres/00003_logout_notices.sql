-- +goose Up
-- Back-channel logout tokens owed to clients (OIDC Back-Channel Logout 1.0):
-- one row per ended session and client that received tokens in it, written in
-- the transaction that ends the session, so a notice survives a restart and
-- sessions ended by another process (the admin CLI) are announced too. No
-- foreign key to sessions, users or grants: they are gone when the notice is
-- delivered. due_at is when the next attempt may start; a node working on a
-- notice pushes it ahead (a lease), so two nodes do not deliver it at once.
CREATE TABLE logout_notices (
    sid        TEXT NOT NULL,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    due_at     BIGINT NOT NULL,
    PRIMARY KEY (sid, client_id)
);
CREATE INDEX logout_notices_due ON logout_notices (due_at);

-- +goose Down
DROP TABLE logout_notices;
