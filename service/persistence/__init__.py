"""Database access: tables, engine, the outbox and the queries the service needs."""
