"""Placeholder router for the event_forms pages (filled by its issue)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
