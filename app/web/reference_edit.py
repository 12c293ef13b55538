"""Placeholder router for the reference_edit pages (filled by its issue)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
