-- +goose Up
-- What the config file governs of each user (storage.Declaration): a bit per
-- declared field (storage.UserFields) and the password hash the config last
-- set. A restart applies the config to those fields alone, so a change made
-- since by the admin CLI stands. Users that exist already govern nothing: the
-- next start takes over each declared field whose stored value agrees with the
-- config, and leaves the others as they are.
ALTER TABLE users ADD COLUMN declared INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN declared_password_hash TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE users DROP COLUMN declared_password_hash;
ALTER TABLE users DROP COLUMN declared;
