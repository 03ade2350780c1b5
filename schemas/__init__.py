"""marshmallow schemas for what crosses the service's edges (HTTP bodies, practice documents)."""
