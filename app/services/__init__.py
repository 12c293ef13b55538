"""Writes: events, reference data, audit rows and backups, each in one transaction."""
