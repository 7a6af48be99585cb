-- +goose Up
-- Anyone can make the authorization endpoint store a pending request, so
-- they are counted against limits: per client address (address_hash, a
-- digest the endpoint derives; indexed with expires_at so that the count,
-- the earliest expiry and the removal of expired ones read only that
-- address's rows) and in all (pending_request_total, kept by triggers on
-- every insert and delete, so a limit is checked without counting the
-- table). A creation locks the total's row while it counts and inserts, so
-- concurrent creations on every node are counted exactly.
ALTER TABLE pending_requests ADD COLUMN address_hash BYTEA NOT NULL DEFAULT '';
CREATE INDEX pending_requests_address ON pending_requests (address_hash, expires_at);

CREATE TABLE pending_request_total (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO pending_request_total (id, n) SELECT 1, COUNT(*) FROM pending_requests;

-- +goose StatementBegin
CREATE FUNCTION pending_requests_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d BIGINT;
BEGIN
    SELECT COUNT(*) INTO d FROM changed;
    IF d = 0 THEN
        RETURN NULL; -- nothing changed: leave the total's row unlocked
    END IF;
    IF TG_OP = 'DELETE' THEN
        d := -d;
    END IF;
    UPDATE pending_request_total SET n = n + d WHERE id = 1;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER pending_requests_counted_insert AFTER INSERT ON pending_requests
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION pending_requests_count();
CREATE TRIGGER pending_requests_counted_delete AFTER DELETE ON pending_requests
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION pending_requests_count();

-- +goose Down
DROP TRIGGER pending_requests_counted_delete ON pending_requests;
DROP TRIGGER pending_requests_counted_insert ON pending_requests;
DROP FUNCTION pending_requests_count();
DROP TABLE pending_request_total;
DROP INDEX pending_requests_address;
ALTER TABLE pending_requests DROP COLUMN address_hash;
