"""Use cases: what the service does when an event arrives, a job falls due, or a client answers."""
