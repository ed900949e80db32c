-- Creates (or re-passwords) one login role, owner or service. Run by stack/postgres.py with {role} and {password}
-- filled in. No role of Gozon's is a superuser or may create roles or databases.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
        ALTER ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '{password}';
    ELSE
        CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '{password}';
    END IF;
END
$$;
