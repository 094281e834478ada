"""Reusable pieces of the dashboard's screens, one module each."""
