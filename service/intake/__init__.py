"""Inbound EHR notifications: parsing, signature checks and session classification (pure)."""
