"""HTML routes, one module per page area."""
