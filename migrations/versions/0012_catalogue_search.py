"""Search documents carry the catalogue: the names of each event's countries, actors and systems.

Every event's `search_vector` is recomputed (deleted ones too: a restore must find the event again)
with app.queries.search_document, in id ranges of BATCH events so no single statement holds a huge
working set. The schema does not change; a downgrade recomputes the documents without the catalogue
part (text only), as the app before this revision wrote them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 07:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 50_000


def _recompute(catalogue: bool) -> None:
    from app.queries.search_document import refresh_sql

    bind = op.get_bind()
    # Families (systems.parent_id) come with another revision: use them when this database has them.
    families = any(c["name"] == "parent_id" for c in sa.inspect(bind).get_columns("systems"))
    sql = sa.text(refresh_sql("e.id >= :lo AND e.id < :hi", families, catalogue))
    low, high = bind.execute(sa.text("SELECT min(id), max(id) FROM events")).one()
    if low is None:
        return
    for lo in range(low, high + 1, BATCH):
        bind.execute(sql, {"lo": lo, "hi": lo + BATCH})


def upgrade() -> None:
    _recompute(catalogue=True)


def downgrade() -> None:
    _recompute(catalogue=False)
