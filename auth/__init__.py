"""Authentication: CURVE keys for the farm's sockets, tokens for the web API."""
