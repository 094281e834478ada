"""Transport plugins that deliver task messages to workers (http-api.md §4.5, §5, §6)."""
