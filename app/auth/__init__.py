"""Accounts, sessions, roles, CSRF and API tokens."""
