"""The broker process and the wire protocol every process shares.

Kept light: afserver's supervisor imports this package for the exit code alone."""

EXIT_PORT_IN_USE = 4  # afserver stops when its broker cannot have the farm's port


def local_host(bind_address: str) -> str:
    """Where processes on the server host reach the broker bound on `bind_address`."""
    if bind_address and bind_address not in ("*", "0.0.0.0", "::"):
        return bind_address
    return "127.0.0.1"
