"""The vocabulary and value types every layer shares: kinds, stages, dates, countries, names."""
