-- Audit trail (issue 5): the hash chain, its locked head, the customer index
-- and the prune mark. See the SQLite migration for the reasoning.
ALTER TABLE audit_events ALTER COLUMN seq DROP IDENTITY IF EXISTS;
ALTER TABLE audit_events ADD COLUMN prev_hash BYTEA, ADD COLUMN hash BYTEA;

-- The chain head. Appends lock this row (SELECT ... FOR UPDATE) until their
-- transaction ends, so writers on any number of nodes form one chain.
CREATE TABLE audit_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    seq       BIGINT  NOT NULL,
    hash      BYTEA   NOT NULL,
    base_seq  BIGINT  NOT NULL DEFAULT 0,
    base_hash BYTEA   NOT NULL
);
INSERT INTO audit_head (id, seq, hash, base_seq, base_hash)
SELECT 1, 0, decode(repeat('00', 32), 'hex'), 0, decode(repeat('00', 32), 'hex')
WHERE NOT EXISTS (SELECT 1 FROM audit_events);

CREATE TABLE audit_subjects (
    customer_id TEXT   NOT NULL,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (customer_id, seq)
);
CREATE INDEX audit_events_actor ON audit_events(actor, seq);
CREATE INDEX audit_events_at ON audit_events(at);

DROP TRIGGER audit_events_no_change ON audit_events;
CREATE FUNCTION audit_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.hash IS NULL OR NEW.prev_hash IS NULL
            OR NEW.seq IS DISTINCT FROM COALESCE((SELECT seq FROM audit_head WHERE id = 1), -1) + 1 THEN
            RAISE EXCEPTION 'audit events must be chained after the head';
        END IF;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        -- The only update ever allowed: chaining an event written before the chain.
        IF OLD.hash IS NULL AND (NEW.seq, NEW.at, NEW.actor, NEW.ip, NEW.user_agent, NEW.action, NEW.object_type,
                NEW.object_id, NEW.outcome, NEW.reason, NEW.request_id, NEW.details)
            IS NOT DISTINCT FROM (OLD.seq, OLD.at, OLD.actor, OLD.ip, OLD.user_agent, OLD.action, OLD.object_type,
                OLD.object_id, OLD.outcome, OLD.reason, OLD.request_id, OLD.details) THEN
            RETURN NEW;
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        -- Only at or below the prune mark, moved by the prune after archiving.
        IF OLD.seq <= COALESCE((SELECT base_seq FROM audit_head WHERE id = 1), 0) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit events are append-only';
END $$;
CREATE TRIGGER audit_events_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_guard();

CREATE FUNCTION audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.seq >= OLD.seq AND NEW.base_seq >= OLD.base_seq THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit chain head only moves forward';
END $$;
CREATE TRIGGER audit_head_guard BEFORE UPDATE OR DELETE ON audit_head
FOR EACH ROW EXECUTE FUNCTION audit_head_guard();

CREATE FUNCTION audit_subjects_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.seq <= COALESCE((SELECT base_seq FROM audit_head WHERE id = 1), 0) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit index is append-only';
END $$;
CREATE TRIGGER audit_subjects_guard BEFORE UPDATE OR DELETE ON audit_subjects
FOR EACH ROW EXECUTE FUNCTION audit_subjects_guard();

-- Copies of the signed checkpoints (see the SQLite migration).
CREATE TABLE audit_checkpoints (
    id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq  BIGINT NOT NULL,
    body TEXT   NOT NULL
);
