"""Questions over every event a filter matches: totals, facets, chart, dyads, lists (the facts copy)."""
