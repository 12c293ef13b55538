"""/healthz: 200 when the database answers and the facts copy is read, 503 otherwise."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.db import SessionDep, get_replica_engine
from app.queries.aggregates import facts
from app.queries.transfer import export_lines

router = APIRouter(tags=["health"])


@router.get("/healthz", include_in_schema=False)
def healthz(db: SessionDep) -> JSONResponse:
    """Ping the database; 503 "starting" until the start-up read of the facts copy is done."""
    try:
        db.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
    # "facts": whether the in-memory copy is read yet ("building" right after start). No counts leak here.
    # The copy the counts read lives with the read engine (the replica's, when DATABASE_REPLICA_URL is set).
    # "lines": "remaking" while this process re-makes outdated export lines at start; "off" when
    # WARM_UP_AT_START is false.
    engine = get_replica_engine()
    starting = facts.warming()
    return JSONResponse(
        {
            "status": "starting" if starting else "ok",
            "database": "up",
            "facts": facts.state(engine),
            "lines": export_lines.state(),
        },
        status_code=503 if starting else 200,
    )
