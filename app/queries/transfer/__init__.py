"""CSV export and import: stored export lines, the streamed export, the bulk import, staged uploads."""
