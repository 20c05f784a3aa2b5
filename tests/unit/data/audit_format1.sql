-- An audit log written by the gateway before RFC 8785 (commit 3838bd1, hash format 1,
-- schema version 2): tests/unit/test_audit_formats.py checks that it still verifies.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
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
    , heartbeat_at TEXT);
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
INSERT INTO audit VALUES(1,'2026-01-01T00:00:00.000000Z','decision','a1','k8s_get','alice','http','{"cluster":"sandbox","kind":"Deployment","name":"api","namespace":"dev"}','allow','[]','rev1','d1','abababababababababababababababababababababababababababababababab','{}','0000000000000000000000000000000000000000000000000000000000000000','c69733973ebd703f66b69612bdda77b0b869146e6ea5345524d80256692bd95b');
INSERT INTO audit VALUES(2,'2026-01-01T00:00:01.000000Z','decision','a2','k8s_scale','alice','stdio','{"cluster":"sandbox","kind":"Deployment","name":"api","namespace":"dev"}','needs_approval','[{"code":"OPS-PROD-001","effect":"needs_approval","message":"k8s_scale on ''api'' writes to production","rule":"production_protection","severity":"high"}]',NULL,NULL,'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd','{"big":1e+21,"ratio":2.5,"tiny":1e-07,"wait_seconds":1.0}','c69733973ebd703f66b69612bdda77b0b869146e6ea5345524d80256692bd95b','05fbf8fd533f374170bc2c15696184acf4f3abc201575a03d110aa1f84453d36');
INSERT INTO audit VALUES(3,'2026-01-01T00:00:02.000000Z','approval','a2',NULL,'bob','cli','{}',NULL,'[]',NULL,NULL,NULL,'{"emoji😀":1,"reason":"ok ✓","ключ":"значение","דּ":2,"😀":3}','05fbf8fd533f374170bc2c15696184acf4f3abc201575a03d110aa1f84453d36','c9f2093e7fa0cb11cf8026b7b77d3f2b0486ab1751d8a27a8834d72da56f7853');
INSERT INTO audit VALUES(4,'2026-01-01T00:00:03.000000Z','rejected_request',NULL,'k8s_get','eve','http','{}',NULL,'[]',NULL,NULL,NULL,'{"error":"InvalidArguments","message":"invalid arguments"}','c9f2093e7fa0cb11cf8026b7b77d3f2b0486ab1751d8a27a8834d72da56f7853','229733198a956db55b469cf5e5c8db104f006c1f62b34246f694ba6ddcf430dd');
CREATE INDEX actions_by_state ON actions (state, created_at);
CREATE INDEX actions_by_created ON actions (created_at);
CREATE INDEX actions_by_expiry ON actions (state, expires_at);
CREATE INDEX audit_by_action ON audit (action_id);
COMMIT;
PRAGMA user_version = 2;
