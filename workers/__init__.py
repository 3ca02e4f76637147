"""Entry points: the server, the long-running workers and the admin commands."""
