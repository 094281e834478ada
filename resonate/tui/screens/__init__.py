"""The dashboard's screens, one module each: overview, the four resource lists, the details,
and help."""
