"""The /api/v1 JSON routes and their pydantic schemas."""
