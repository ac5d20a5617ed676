-- 0005: every change to a token row is announced, so that API processes, which cache
-- verified tokens, drop them at once. In the database, not in the code that revokes: a
-- revocation by any path (the API, the CLI, an operator's UPDATE) reaches every cache.
CREATE FUNCTION api_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('scanledger_tokens', CASE WHEN TG_OP = 'TRUNCATE' THEN '*' ELSE OLD.name END);
    RETURN NULL;
END $$;
CREATE TRIGGER api_tokens_changed AFTER UPDATE OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION api_tokens_changed();
CREATE TRIGGER api_tokens_truncated AFTER TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION api_tokens_changed();
