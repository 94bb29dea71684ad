-- Every replica rewrites each lease it holds every few seconds (expires_at,
-- in one statement for all of them). Leaving half of each page free lets
-- PostgreSQL put the new row version on the same page without touching
-- the indexes (a HOT update): expires_at is in none of them. Rows written
-- from now on get the room; a full table rewrite is not needed for that.
ALTER TABLE broker_session_leases SET (fillfactor = 50);
