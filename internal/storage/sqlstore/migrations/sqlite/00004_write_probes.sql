-- +goose Up
-- One row per node, rewritten by each readiness probe (GET /readyz): a probe
-- whose write fails (a full disk, a read-only database) marks the node not
-- ready. Rows of nodes that stopped probing are removed by the probes of the
-- others after a day.
CREATE TABLE write_probes (
    node       TEXT PRIMARY KEY,
    written_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE write_probes;
