-- Which binaries this schema serves, so that a rolling upgrade keeps the
-- replicas still running the previous release ready once the new release's
-- migrations have run (deploy/README.md, "Upgrades"). A binary made for
-- schema version B serves this schema, at version V > B, when
-- oldest_binary <= B; at V = B it always does.
--
-- Every migration from here on decides it: an additive one (a new table, a
-- column with a default, an index) leaves it, since the previous binaries
-- keep working; one that an older binary cannot run on (a dropped or renamed
-- column, a new NOT NULL column without a default, changed meaning) sets it
-- to its own version. Its down migration puts back what its up changed.
CREATE TABLE schema_compat (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    oldest_binary bigint NOT NULL CHECK (oldest_binary > 0)
);
-- This migration only adds the table: binaries made for version 20 run on
-- it (though they do not read it yet).
INSERT INTO schema_compat (oldest_binary) VALUES (20);
-- The server reads it; only the owner's migrations change it.
REVOKE INSERT, UPDATE, DELETE ON schema_compat FROM ordertune_app;
