"""What a database-backed Gozon service (orders, payments) adds to the HTTP plumbing: the app's shape, with the ORM
and messaging started and stopped with it, the settings, health and readiness, Idempotency-Key, and the operations
endpoints."""
