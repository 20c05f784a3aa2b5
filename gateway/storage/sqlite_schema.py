"""The SQLite backend's schema history: ``MIGRATIONS[i]`` takes a database from version
``i`` to ``i + 1`` (``PRAGMA user_version``). Never edit a released entry; append one, and
append its PostgreSQL counterpart to ``gateway/storage/postgres_schema.py``."""

from __future__ import annotations

from typing import Final

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE actions (
        id              TEXT PRIMARY KEY,
        state           TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'executing',
                            'succeeded', 'failed', 'denied', 'expired', 'cancelled', 'interrupted')),
        tool            TEXT NOT NULL,
        call_json       TEXT NOT NULL,
        fingerprint     TEXT NOT NULL,
        decision_json   TEXT NOT NULL,
        bundle_revision TEXT,
        decision_id     TEXT,
        requester       TEXT NOT NULL,
        requester_json  TEXT NOT NULL,
        target_json     TEXT NOT NULL,
        min_approvals   INTEGER NOT NULL,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL,
        expires_at      TEXT NOT NULL,
        last_decision_json TEXT,
        claimed_by      TEXT,
        result_json     TEXT,
        error           TEXT
    );
    -- `queue list [--state S]`: newest first, optionally by state
    CREATE INDEX actions_by_state ON actions (state, created_at);
    CREATE INDEX actions_by_created ON actions (created_at);
    -- the executor's sweep: live rows past their expiry
    CREATE INDEX actions_by_expiry ON actions (state, expires_at);

    CREATE TABLE approvals (
        action_id   TEXT NOT NULL REFERENCES actions (id),
        subject     TEXT NOT NULL,
        groups_json TEXT NOT NULL,
        approved_at TEXT NOT NULL,
        reason      TEXT,
        fingerprint TEXT NOT NULL,
        PRIMARY KEY (action_id, subject)
    ) WITHOUT ROWID;

    CREATE TABLE audit (
        seq             INTEGER PRIMARY KEY,
        time            TEXT NOT NULL,
        kind            TEXT NOT NULL,
        action_id       TEXT,
        tool            TEXT,
        subject         TEXT,
        transport       TEXT,
        target          TEXT NOT NULL,
        outcome         TEXT,
        reasons         TEXT NOT NULL,
        bundle_revision TEXT,
        decision_id     TEXT,
        fingerprint     TEXT,
        detail          TEXT NOT NULL,
        prev_hash       TEXT NOT NULL,
        hash            TEXT NOT NULL
    );
    CREATE INDEX audit_by_action ON audit (action_id);
    """,
    # 2: executions renew a lease, so a claim by a process on another host (a container
    # sharing the volume) can be told dead without a pid to look at.
    """
    ALTER TABLE actions ADD COLUMN heartbeat_at TEXT;
    """,
    # 3: who denied a denied action ('policy' on re-evaluation, or 'approver'), and the
    # proofs of an approval: the statement approved (canonical JSON), the approver's SSH
    # signature over it, and the gateway's attestation that it came through the API.
    """
    ALTER TABLE actions ADD COLUMN denied_by TEXT;
    ALTER TABLE approvals ADD COLUMN statement TEXT;
    ALTER TABLE approvals ADD COLUMN signature TEXT;
    ALTER TABLE approvals ADD COLUMN attestation TEXT;
    """,
    # 4: audit rows say how their hash was computed (gateway.audit): rows already written
    # keep format 1 and verify as they were; new rows use RFC 8785 canonical JSON.
    """
    ALTER TABLE audit ADD COLUMN hash_format INTEGER NOT NULL DEFAULT 1;
    """,
    # 5: recent activity for runaway protection (gateway.history): calls per principal
    # ('p:<subject>') or session ('s:<session>'), by effect, in 10-second buckets (the last
    # minute) and 1-minute buckets (the last hour), so a count reads at most ~70 rows per
    # scope however busy the principal; pruned after two hours.
    """
    CREATE TABLE activity (
        scope    TEXT NOT NULL,
        width    INTEGER NOT NULL CHECK (width IN (10, 60)),
        bucket   INTEGER NOT NULL,
        reads    INTEGER NOT NULL DEFAULT 0,
        writes   INTEGER NOT NULL DEFAULT 0,
        deletes  INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (scope, width, bucket)
    ) WITHOUT ROWID;
    CREATE INDEX activity_by_bucket ON activity (bucket);
    """,
    # 6: the reversal journal (gateway.queue.journal): what each executed write changed, to
    # roll it back. call_json and changes_json are sealed like parked calls (raw before-
    # images hold Secret values); the other columns are what views show.
    """
    CREATE TABLE journal (
        action_id            TEXT PRIMARY KEY,
        tool                 TEXT NOT NULL,
        backend              TEXT NOT NULL,
        requester            TEXT NOT NULL,
        requester_json       TEXT NOT NULL,
        approver_groups_json TEXT NOT NULL,
        target_json          TEXT NOT NULL,
        summary_json         TEXT NOT NULL,
        executed_at          TEXT NOT NULL,
        complete             INTEGER NOT NULL,
        call_json            TEXT NOT NULL,
        changes_json         TEXT NOT NULL,
        rollback_of          TEXT,
        rolled_back_by       TEXT,
        rolled_back_subject  TEXT,
        rolled_back_at       TEXT
    );
    CREATE INDEX journal_by_executed ON journal (executed_at);
    CREATE INDEX journal_by_rollback_of ON journal (rollback_of);
    """,
    # 7: every decision OPA produced, with its input masked as OPA's decision log masks it,
    # kept for `gateway policy replay` (gateway.recording writes it in batches, prunes it
    # by age and row count; gateway.records reads it). input_json is NULL for an input
    # above GATEWAY_RECORD_MAX_INPUT_BYTES.
    """
    CREATE TABLE decision_records (
        seq             INTEGER PRIMARY KEY,
        decided_at      TEXT NOT NULL,
        call_id         TEXT,
        action_id       TEXT NOT NULL,
        source          TEXT NOT NULL,
        tool            TEXT NOT NULL,
        subject         TEXT NOT NULL,
        outcome         TEXT NOT NULL,
        bundle_revision TEXT,
        decision_id     TEXT,
        target_json     TEXT NOT NULL,
        input_json      TEXT,
        input_bytes     INTEGER NOT NULL,
        erased_json     TEXT NOT NULL,
        decision_json   TEXT NOT NULL
    );
    -- replay reads a window in (decided_at, seq) order: the rowid ends every index
    CREATE INDEX decision_records_by_time ON decision_records (decided_at);
    CREATE INDEX decision_records_by_tool ON decision_records (tool, decided_at);
    """,
)

SCHEMA_VERSION: Final[int] = len(MIGRATIONS)
