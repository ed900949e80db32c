"""HTTP plumbing shared by the Gozon Sanic services: problem+json errors, identity and request-id headers,
money parsing, idempotency keys, health endpoints and logging."""
