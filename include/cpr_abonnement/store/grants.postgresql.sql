-- Database roles of the filter database and exactly what each may do
-- (docs/deployment-roles.md says who uses which and why).
--
-- Applied by `cprsub db upgrade --grant-roles` after every migration, in the migration's
-- own session, as the owner (the role the migrations run as). Idempotent: everything
-- the roles held on this database is revoked first, then granted again, so a right
-- taken out of this file is gone after the next upgrade, and a table a migration adds
-- gets the rights written here for it. A table this file does not name gets no rights
-- at all (fail closed; tests/store/test_roles.py checks that every table is named).
-- There are deliberately no ALTER DEFAULT PRIVILEGES: a new table would otherwise be
-- readable (PNRs, keys) before anyone decided who may read it.
--
-- Every right below was derived from the statements the code runs, and each role runs
-- its real code paths in tests/store/test_roles.py and tests/pipeline/test_roles_pipeline.py.

-- 0. Nothing for anyone but the owner: no CONNECT or TEMP for PUBLIC, no CREATE in the
--    schema, no rights left over from an earlier version of this file.
DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC, cprsub_api, cprsub_worker, '
                   'cprsub_keys, cprsub_pickup', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO cprsub_api, cprsub_worker, '
                   'cprsub_keys, cprsub_pickup', current_database());
    -- The day's PNRs are COPYed into a temporary table for the filter join
    -- (filters/pnr.py): the workers filter, the API's console and `cprsub
    -- filter-preview` run the same join.
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO cprsub_api, cprsub_worker',
                   current_database());
END
$$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM cprsub_api, cprsub_worker, cprsub_keys, cprsub_pickup;
GRANT USAGE ON SCHEMA public TO cprsub_api, cprsub_worker, cprsub_keys, cprsub_pickup;
REVOKE ALL ON ALL TABLES IN SCHEMA public
    FROM PUBLIC, cprsub_api, cprsub_worker, cprsub_keys, cprsub_pickup;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public
    FROM PUBLIC, cprsub_api, cprsub_worker, cprsub_keys, cprsub_pickup;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public
    FROM PUBLIC, cprsub_api, cprsub_worker, cprsub_keys, cprsub_pickup;

-- 1. cprsub_api: the SOAP and REST subscription API, the administration API, the
--    operator console and the operator's `cprsub subscriber ...` commands
--    (SubscriptionService). Filters are never deleted (removal closes the validity
--    period: UPDATE); the audit trail is append-only (INSERT, no UPDATE or DELETE).
GRANT SELECT, INSERT, UPDATE ON subscriber, delivery_setting, credential, certificate,
    service_agreement, ssh_key TO cprsub_api;
GRANT SELECT, INSERT ON audit TO cprsub_api;
-- The filter lock (store/clock.py): UPDATE ... RETURNING on its one row.
GRANT SELECT, UPDATE ON filter_lock TO cprsub_api;
-- The console and `cprsub health` read what the pipeline recorded.
GRANT SELECT ON extract_run, delivery, extract_check TO cprsub_api;

-- 2. cprsub_worker: the Airflow tasks (the daily DAG, the pick-up housekeeping DAG)
--    and `cprsub health`. Reads subscribers and filters, never changes them; writes the
--    extract registry, the extract checks, the delivery ledger and audit rows (alerts
--    sent, certificate expiry warnings, retention); takes the filter lock for the
--    snapshot instant. No API tokens, SSH keys or service agreements.
GRANT SELECT ON subscriber, delivery_setting, certificate TO cprsub_worker;
GRANT SELECT, INSERT, UPDATE ON extract_run, delivery TO cprsub_worker;
GRANT SELECT, INSERT ON extract_check, audit TO cprsub_worker;
GRANT SELECT, UPDATE ON filter_lock TO cprsub_worker;

-- The CPR replica (issue 25): the workers apply each day's extract to it; the API
-- answers look-ups from it and records each one (append-only, as the audit trail).
GRANT SELECT, INSERT, UPDATE ON replica_person, replica_extract TO cprsub_worker;
-- The look-up log's lifetime (housekeeping removes rows past CPRSUB_LOOKUP_LOG_DAYS).
GRANT SELECT, DELETE ON replica_lookup TO cprsub_worker;
GRANT SELECT ON replica_person, replica_extract TO cprsub_api;
GRANT SELECT, INSERT ON replica_lookup TO cprsub_api;

-- 3. cprsub_keys: sshd's AuthorizedKeysCommand (`cprsub pickup authorized-keys`),
--    which runs for every login attempt, from anywhere on the internet: the columns
--    its one query reads, nothing else (no PNRs, no contact persons, no tokens).
GRANT SELECT (id, uuid, pickup_account, active, delivery_mode) ON subscriber TO cprsub_keys;
GRANT SELECT (subscriber_id, key_type, key_data, fingerprint, bits, comment, added_at,
              removed_at, id) ON ssh_key TO cprsub_keys;

-- 4. cprsub_pickup: the pick-up container's `cprsub pickup sync-accounts` and
--    `cprsub pickup track` (which accounts exist; downloads and removals recorded in
--    the ledger's pick-up columns, and only those).
GRANT SELECT (uuid, pickup_account, active, delivery_mode) ON subscriber TO cprsub_pickup;
GRANT SELECT (id, subscriber_uuid, file_name, available_at, picked_up_at, removed_at,
              removed_by) ON delivery TO cprsub_pickup;
GRANT UPDATE (available_at, picked_up_at, removed_at, removed_by) ON delivery
    TO cprsub_pickup;

-- 5. The filter tables, one per filter type (filters/*.py; a new type's migration adds
--    one): every table named filter_* except the lock. The API adds and removes
--    filters; the workers read the snapshot. Neither keys nor pick-up reads a PNR.
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT tablename FROM pg_tables
             WHERE schemaname = 'public' AND tablename LIKE 'filter\_%'
               AND tablename <> 'filter_lock'
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO cprsub_api', t);
        EXECUTE format('GRANT SELECT ON %I TO cprsub_worker', t);
    END LOOP;
END
$$;

-- 6. The id sequences of the tables a role INSERTs into (nextval needs USAGE).
DO $$
DECLARE
    t text;
    r text;
    seq text;
BEGIN
    FOR t IN SELECT table_name FROM information_schema.columns
             WHERE table_schema = 'public' AND column_name = 'id' LOOP
        seq := pg_get_serial_sequence(format('public.%I', t), 'id');
        CONTINUE WHEN seq IS NULL;
        FOREACH r IN ARRAY ARRAY['cprsub_api', 'cprsub_worker', 'cprsub_keys',
                                 'cprsub_pickup'] LOOP
            IF has_table_privilege(r, format('public.%I', t), 'INSERT') THEN
                EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I', seq, r);
            END IF;
        END LOOP;
    END LOOP;
END
$$;
