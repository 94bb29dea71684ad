ALTER TABLE confirmations
    DROP COLUMN closed,
    DROP COLUMN commission;
DROP TABLE executions;
