"""Gateway: the only public entry. Routing, identity check, request ids, CORS, timeouts; no business logic."""
