"""System families: the systems a filter's `system` names cover, family totals, and the cycle check.

A system may name a parent (Geran-2 -> Shahed-136); `system=Shahed-136` then covers the variants at
any depth. The filter resolves the names to ids here, once per request (`with_family`), and both
engines (SQL `conditions`, the in-memory facts `Selection`) test that one set of ids. Recursive
queries use UNION, not UNION ALL, so even a cycle written behind the app's back ends.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Select, and_, distinct, func, select
from sqlalchemy.orm import Session, aliased

from app.domain.textkeys import fold
from app.filters import EventFilter
from app.models import Event, EventSystem, System


def _named(names: tuple[str, ...]) -> Select[int]:
    """Ids of the systems the names name (designation or alias, folded)."""
    return select(System.id).where(System.match_keys.overlap([fold(n) for n in names]))


def _with_descendants(start: Select[int]) -> Select[int]:
    """The ids `start` selects and every variant below them, at any depth (one recursive query)."""
    tree = start.cte("family", recursive=True)
    child = aliased(System)
    tree = tree.union(select(child.id).where(child.parent_id == tree.c.id))
    return select(tree.c.id)


def family_ids(session: Session, names: tuple[str, ...], exact: bool = False) -> tuple[int, ...]:
    """Ids of the systems the names cover: the named ones and (unless `exact`) their variants."""
    stmt = _named(names) if exact else _with_descendants(_named(names))
    return tuple(sorted(session.scalars(stmt)))


def with_family(session: Session, f: EventFilter) -> EventFilter:
    """The filter with `system_family` resolved (one query when `system` is set, none otherwise)."""
    if not f.system:
        return replace(f, system_family=None)
    return replace(f, system_family=family_ids(session, f.system, f.system_exact))


def descendant_ids(session: Session, system_id: int) -> set[int]:
    """The system's variants at any depth (not itself): parents it must never take."""
    found = set(session.scalars(_with_descendants(select(System.id).where(System.id == system_id))))
    found.discard(system_id)
    return found


def family_totals(session: Session) -> dict[int, int]:
    """Per system that has variants: visible events naming it or any variant, each event counted once."""
    roots = select(System.id.label("root"), System.id.label("id")).where(
        System.id.in_(select(System.parent_id).where(System.parent_id.is_not(None)))
    )
    tree = roots.cte("families", recursive=True)
    child = aliased(System)
    tree = tree.union(select(tree.c.root, child.id).where(child.parent_id == tree.c.id))
    stmt = (
        select(tree.c.root, func.count(distinct(Event.id)))
        .select_from(tree)
        .outerjoin(EventSystem, EventSystem.system_id == tree.c.id)
        .outerjoin(Event, and_(Event.id == EventSystem.event_id, Event.deleted_at.is_(None)))
        .group_by(tree.c.root)
    )
    return {int(root): int(n) for root, n in session.execute(stmt)}
