"""kombu topology, the outbox relay and the queue consumer."""
