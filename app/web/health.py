"""/healthz: 200 when the database answers, 503 otherwise."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.db import SessionDep, get_replica_engine
from app.queries import export_lines, facts

router = APIRouter(tags=["health"])


@router.get("/healthz", include_in_schema=False)
def healthz(db: SessionDep) -> JSONResponse:
    """Ping the database."""
    try:
        db.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
    # "facts": whether the in-memory copy is read yet ("building" right after start); "terms": whether its
    # prepared search terms are (read in the background after it). No counts leak here.
    # The copy lives with the read engine (the replica's, when DATABASE_REPLICA_URL is set).
    # "lines": "remaking" while this process re-makes outdated export lines at start; "off" in tests.
    engine = get_replica_engine()
    return JSONResponse(
        {
            "status": "ok",
            "database": "up",
            "facts": facts.state(engine),
            "terms": facts.terms_state(engine),
            "lines": export_lines.state(),
        }
    )
