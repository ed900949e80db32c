"""HTTP plumbing any Gozon Sanic app uses, the gateway included: problem+json errors, identity and request-id
headers, money and parameter parsing, logging, metrics, serving. It imports no ORM, database driver or Kafka client.

``servicekit.service`` is what a database-backed service adds: the app's shape (the ORM and messaging started and
stopped with it), its settings, health and readiness, Idempotency-Key, the operations endpoints."""
