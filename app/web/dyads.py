"""Dyads: the supplier x recipient matrix for the current filter, and one dyad's support ladder."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app.auth.deps import ViewerDep
from app.db import ReadSessionDep
from app.domain.countries import country_name, numeric_codes
from app.domain.dates import format_iso
from app.domain.vocab import STAGES
from app.filters import EventFilter
from app.queries.aggregates.cache import cached, data_version
from app.queries.aggregates.dyads import Ladder, Matrix, dyad_matrix, support_ladder
from app.queries.links import fulfilments
from app.templating import is_htmx, render
from app.web.timeline import aggregates, filter_state, parse_view, push_url

router = APIRouter()

# The flow map draws the largest pairs only: hundreds of arrows would hide each other. The matrix below it
# lists every pair by number.
MAP_PAIRS = 60


def dyad_query(f: EventFilter, supplier: str, recipient: str) -> str:
    """The query string of one cell: the filter with exactly this supplier and recipient."""
    return (
        f.without("supplier")
        .without("recipient")
        .adding("supplier", supplier)
        .adding("recipient", recipient)
        .query_string()
    )


def ladder_json(ladder: Ladder) -> dict[str, Any]:
    """What static/js/timeline.js draws as the step line."""
    return {
        "labels": [m.label for m in ladder.months],
        # ISO months ('2025-10', or '2018' for a year-only bucket) that the script places on a time axis.
        "months": [format_iso(m.month, "year" if m.year_only else "month") for m in ladder.months],
        "reached": [m.reached for m in ladder.months],
        "highest": [m.highest for m in ladder.months],
        "stages": {str(k): v for k, v in STAGES.items()},
    }


def _ladder_and_json(db: Session, f: EventFilter) -> tuple[Ladder, dict[str, Any]]:
    """The ladder and its step line's data, cached together (hundreds of month labels on a big dyad)."""
    ladder = support_ladder(db, f)
    return ladder, ladder_json(ladder)


def flow_json(f: EventFilter, matrix: Matrix) -> dict[str, Any]:
    """What static/js/flowmap.js draws: the largest pairs with their counts, stages and ladder links."""
    largest = sorted(matrix.cells.items(), key=lambda kv: (-kv[1], kv[0]))[:MAP_PAIRS]
    codes = numeric_codes()
    flows = [
        {
            "s": s,
            "r": r,
            "sn": country_name(s),
            "rn": country_name(r),
            "n": n,
            "stage": matrix.stages.get((s, r)),
            "href": f"/dyads?{dyad_query(f, s, r)}",
        }
        for (s, r), n in largest
    ]
    used = {code for (s, r), _ in largest for code in (s, r)}
    return {
        "flows": flows,
        "pairs": len(matrix.cells),
        "numeric": {code: codes[code] for code in sorted(used) if code in codes},
        "stages": {str(k): v for k, v in STAGES.items()},
    }


def heat(count: int, top: int) -> int:
    """Shade class 0-5 of a matrix cell, relative to the largest cell."""
    return 0 if not count or not top else max(1, min(5, -(-count * 5 // top)))


@router.get("/dyads", response_class=HTMLResponse)
def dyads(request: Request, db: ReadSessionDep, principal: ViewerDep) -> HTMLResponse:
    """The matrix; with exactly one supplier and one recipient, that dyad's ladder (read-only: replica)."""
    f, errors = parse_view(request, db)
    version = data_version(db)
    query = f.query_string()
    context: dict[str, Any] = {
        "filter": f,
        "errors": errors,
        "state": filter_state(f, errors, request.query_params),
        # Counted on the facts copy, in this response (no lazy parts): milliseconds, cached per version.
        **aggregates(db, f, ("total", "facets")),
        "query": query,
        "oob": is_htmx(request),
        "dyad_query": dyad_query,
        "heat": heat,
        "matrix": None,
        "ladder": None,
    }
    if len(f.supplier) == 1 and len(f.recipient) == 1:
        ladder, drawn = cached(("ladder", query, version), lambda: _ladder_and_json(db, f))
        context["ladder"] = ladder
        context["ladder_json"] = drawn
        # Not kept with the ladder: a new link moves no data version, and this is one small query.
        context["fulfilments"] = fulfilments(db, f)
        context["matrix_query"] = f.without("supplier").without("recipient").query_string()
    else:
        context["matrix"] = cached(("dyads", query, version), lambda: dyad_matrix(db, f))
        context["flows"] = flow_json(f, context["matrix"])
    if not is_htmx(request):
        return render(request, "dyads/index.html", context)
    return render(request, "dyads/_partial.html", context, headers=push_url("/dyads", f))
