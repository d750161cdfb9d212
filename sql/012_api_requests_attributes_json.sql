-- 012: api_requests keeps each event's attributes as a JSON object in a String column (issue 18,
-- ADR 0118 "otlp-speed3"). The Map(LowCardinality(String), String) column of 005 cost chDB about
-- twice a transfers row per inserted row (parsing the Map literal, writing its key dictionary and
-- three streams per part); a JSON String halves that. New rows write `attributes_json` only (the
-- Map column stays for rows stored before this migration and is empty for new ones). Read with
-- JSONExtractString(attributes_json, 'session.id') etc. Both statements can be re-run: the column
-- is added if missing, and the copy only fills rows whose JSON is still empty.
ALTER TABLE {{db}}.api_requests ADD COLUMN IF NOT EXISTS attributes_json String DEFAULT '' COMMENT 'event attributes as a JSON object of strings (OTLP log record + resource)';
ALTER TABLE {{db}}.api_requests UPDATE attributes_json = toJSONString(attributes) WHERE attributes_json = '' AND length(attributes) > 0 SETTINGS mutations_sync = 1;
