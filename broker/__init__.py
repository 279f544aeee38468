"""The broker process and the wire protocol every process shares.

Kept light: afserver's supervisor imports this package for the exit code alone."""

EXIT_PORT_IN_USE = 4  # afserver stops when its broker cannot have the farm's port
