-- The cache service: each catalogue row names the blob holding its bytes (written before the row,
-- so a crash mid-write leaves at most a blob without a row, which the sweeper removes). Rows from
-- before this (an imported catalogue) have none and are misses.
ALTER TABLE cache_artifacts ADD COLUMN blob_key text UNIQUE;
ALTER TABLE cache_tools ADD COLUMN blob_key text UNIQUE;
