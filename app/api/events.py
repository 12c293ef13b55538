"""Placeholder /api/v1 router for events (filled by its issue)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["events"])
