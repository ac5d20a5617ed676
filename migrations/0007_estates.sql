-- 0007: an estate's scans are found by the estate id their Requested carries
-- (GET /api/estates/{id}). Partial: only estate requests are indexed.
CREATE INDEX scan_events_estate ON scan_events ((payload -> 'estate' ->> 'id'))
    WHERE kind = 'Requested' AND (payload -> 'estate' ->> 'id') IS NOT NULL;
