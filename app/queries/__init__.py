"""All SQL lives here: the event select for a filter, pages, facets, chart series, dyads."""
