-- Least privilege for a production PostgreSQL (42 CFR 2.16). Run as a superuser once the
-- schema exists (`hub db upgrade` as the owner role), then run the hub as `lead_hub`.
-- The triggers already refuse UPDATE and DELETE on ledger_entry; without the privileges,
-- the hub's own role cannot even reach them, nor drop the triggers.
CREATE ROLE lead_hub_owner NOLOGIN;            -- owns the tables; migrations and purges
CREATE ROLE lead_hub LOGIN;                    -- the running hub (API and workers)

-- GRANT CONNECT ON DATABASE <your database> TO lead_hub;
GRANT USAGE ON SCHEMA public TO lead_hub;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO lead_hub;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO lead_hub;
-- the ledger is append-only for the hub: no UPDATE, no DELETE
REVOKE UPDATE, DELETE, TRUNCATE ON ledger_entry FROM lead_hub;
-- its checkpoints and consent history are append-only too
REVOKE UPDATE, DELETE, TRUNCATE ON ledger_checkpoint, consent_version, case_event FROM lead_hub;
