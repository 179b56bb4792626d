"""A host made ready for the project: packages and tools (host_prep), the deploy user and the app's
user, the proxy, the database host (PostgreSQL, Redis) and the database's snapshots and dumps
(database)."""
