"""HTTP side of the server: the statistics pages and their JSON API."""
