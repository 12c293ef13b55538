"""Placeholder /api/v1 router for reference (filled by its issue)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["reference"])
