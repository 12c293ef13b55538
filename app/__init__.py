"""Signalboard: record, filter and export foreign military support signals."""
