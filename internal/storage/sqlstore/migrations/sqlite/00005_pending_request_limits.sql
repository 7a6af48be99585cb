-- +goose Up
-- Anyone can make the authorization endpoint store a pending request, so
-- they are counted against limits: per client address (address_hash, a
-- digest the endpoint derives; indexed with expires_at so that the count,
-- the earliest expiry and the removal of expired ones read only that
-- address's rows) and in all (pending_request_total, kept by triggers on
-- every insert and delete, so a limit is checked without counting the table).
ALTER TABLE pending_requests ADD COLUMN address_hash BLOB NOT NULL DEFAULT x'';
CREATE INDEX pending_requests_address ON pending_requests (address_hash, expires_at);

CREATE TABLE pending_request_total (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO pending_request_total (id, n) SELECT 1, COUNT(*) FROM pending_requests;

-- +goose StatementBegin
CREATE TRIGGER pending_requests_counted_insert AFTER INSERT ON pending_requests
BEGIN
    UPDATE pending_request_total SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER pending_requests_counted_delete AFTER DELETE ON pending_requests
BEGIN
    UPDATE pending_request_total SET n = n - 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER pending_requests_counted_delete;
DROP TRIGGER pending_requests_counted_insert;
DROP TABLE pending_request_total;
DROP INDEX pending_requests_address;
ALTER TABLE pending_requests DROP COLUMN address_hash;
