"""Placeholder router for the users pages (filled by its issue)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
