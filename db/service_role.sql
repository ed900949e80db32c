-- Creates (or re-passwords) one service's login role. Run by stack/postgres.py with {role} and {password}
-- filled in; the database itself is created next, owned by this role, with CONNECT revoked from PUBLIC so
-- that no other service's role can open it.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
        ALTER ROLE "{role}" LOGIN PASSWORD '{password}';
    ELSE
        CREATE ROLE "{role}" LOGIN PASSWORD '{password}';
    END IF;
END
$$;
