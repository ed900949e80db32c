-- What a service's own role may do in its database, applied by stack/migrate.py as the database's owner after
-- every migration run, with {role} filled in: read and write the rows of every table, use the sequences, and
-- nothing else. The owner keeps the schema: the service's role cannot create, alter or drop anything.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role};
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role};
-- Which migrations ran is the owner's business.
REVOKE ALL ON schema_migrations FROM {role};
