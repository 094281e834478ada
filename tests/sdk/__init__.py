"""End-to-end tests with the official Python SDK (resonate-sdk 0.4.12)."""
