"""The PostgreSQL backend's schema history: ``MIGRATIONS[i]`` takes a database from version
``i`` to ``i + 1`` (the one row of ``gateway_schema``). Never edit a released entry; append
one, and its SQLite counterpart to ``gateway/storage/sqlite_schema.py``.

The columns mirror SQLite's: JSON and timestamps are ``text`` (canonical JSON, fixed-width
RFC 3339 UTC), so what the audit chain hashes reads back byte for byte, and keys and
timestamps are ``COLLATE "C"`` so they sort and compare by code point whatever the
database's locale (id-prefix lookups, expiry comparisons, newest-first lists).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: the queue and the audit chain as SQLite's schema version 4 holds them.
    """
    CREATE TABLE actions (
        id                 text COLLATE "C" PRIMARY KEY,
        state              text COLLATE "C" NOT NULL CHECK (state IN ('pending', 'approved',
                               'executing', 'succeeded', 'failed', 'denied', 'expired',
                               'cancelled', 'interrupted')),
        tool               text NOT NULL,
        call_json          text NOT NULL,
        fingerprint        text NOT NULL,
        decision_json      text NOT NULL,
        bundle_revision    text,
        decision_id        text,
        requester          text NOT NULL,
        requester_json     text NOT NULL,
        target_json        text NOT NULL,
        min_approvals      integer NOT NULL,
        created_at         text COLLATE "C" NOT NULL,
        updated_at         text COLLATE "C" NOT NULL,
        expires_at         text COLLATE "C" NOT NULL,
        last_decision_json text,
        claimed_by         text,
        result_json        text,
        error              text,
        heartbeat_at       text COLLATE "C",
        denied_by          text
    );
    CREATE INDEX actions_by_state ON actions (state, created_at);
    CREATE INDEX actions_by_created ON actions (created_at);
    CREATE INDEX actions_by_expiry ON actions (state, expires_at);

    CREATE TABLE approvals (
        action_id   text COLLATE "C" NOT NULL REFERENCES actions (id),
        subject     text COLLATE "C" NOT NULL,
        groups_json text NOT NULL,
        approved_at text COLLATE "C" NOT NULL,
        reason      text,
        fingerprint text NOT NULL,
        statement   text,
        signature   text,
        attestation text,
        PRIMARY KEY (action_id, subject)
    );

    CREATE TABLE audit (
        seq             bigint PRIMARY KEY,
        time            text COLLATE "C" NOT NULL,
        kind            text NOT NULL,
        action_id       text COLLATE "C",
        tool            text,
        subject         text,
        transport       text,
        target          text NOT NULL,
        outcome         text,
        reasons         text NOT NULL,
        bundle_revision text,
        decision_id     text,
        fingerprint     text,
        detail          text NOT NULL,
        prev_hash       text NOT NULL,
        hash            text NOT NULL,
        hash_format     integer NOT NULL DEFAULT 1
    );
    CREATE INDEX audit_by_action ON audit (action_id);

    -- Every committed transition of an action is announced to the replicas LISTEN-ing
    -- (delivered at commit, never for a rolled-back one): a parked call waiting for its
    -- approval wakes on whichever replica it waits. Heartbeats do not set state.
    CREATE FUNCTION gateway_announce_action() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('policy_gateway_actions', NEW.id);
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER actions_announce AFTER UPDATE OF state ON actions
        FOR EACH ROW EXECUTE FUNCTION gateway_announce_action();
    """,
    # 2: recent activity for runaway protection, as SQLite's version 5 (gateway.history);
    # replicas add to the same buckets (ON CONFLICT … DO UPDATE is atomic).
    """
    CREATE TABLE activity (
        scope    text COLLATE "C" NOT NULL,
        width    integer NOT NULL CHECK (width IN (10, 60)),
        bucket   bigint NOT NULL,
        reads    bigint NOT NULL DEFAULT 0,
        writes   bigint NOT NULL DEFAULT 0,
        deletes  bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (scope, width, bucket)
    );
    CREATE INDEX activity_by_bucket ON activity (bucket);
    """,
    # 3: the reversal journal, as SQLite's schema version 6 holds it.
    """
    CREATE TABLE journal (
        action_id            text COLLATE "C" PRIMARY KEY,
        tool                 text NOT NULL,
        backend              text NOT NULL,
        requester            text NOT NULL,
        requester_json       text NOT NULL,
        approver_groups_json text NOT NULL,
        target_json          text NOT NULL,
        summary_json         text NOT NULL,
        executed_at          text COLLATE "C" NOT NULL,
        complete             integer NOT NULL,
        call_json            text NOT NULL,
        changes_json         text NOT NULL,
        rollback_of          text COLLATE "C",
        rolled_back_by       text COLLATE "C",
        rolled_back_subject  text,
        rolled_back_at       text COLLATE "C"
    );
    CREATE INDEX journal_by_executed ON journal (executed_at);
    CREATE INDEX journal_by_rollback_of ON journal (rollback_of);
    """,
    # 4: recorded decisions for `gateway policy replay`, as SQLite's schema version 7.
    """
    CREATE TABLE decision_records (
        seq             bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        decided_at      text COLLATE "C" NOT NULL,
        call_id         text COLLATE "C",
        action_id       text COLLATE "C" NOT NULL,
        source          text NOT NULL,
        tool            text COLLATE "C" NOT NULL,
        subject         text NOT NULL,
        outcome         text NOT NULL,
        bundle_revision text,
        decision_id     text,
        target_json     text NOT NULL,
        input_json      text,
        input_bytes     integer NOT NULL,
        erased_json     text NOT NULL,
        decision_json   text NOT NULL
    );
    CREATE INDEX decision_records_by_time ON decision_records (decided_at, seq);
    CREATE INDEX decision_records_by_tool ON decision_records (tool, decided_at, seq);
    """,
)

SCHEMA_VERSION: Final[int] = len(MIGRATIONS)
