"""Events (SPEC B §9): what the server emits, the payloads, and the service that delivers them."""
