"""resonate: a durable-promises server compatible with the Resonate REST API."""

__version__ = "0.1.0"
