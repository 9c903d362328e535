"""The node's HTTP API: one route table (``routes``), handlers per resource, one error
middleware (``errors``), and ``/openapi.json`` (``openapi``). See docs/api.md."""

from node.api.app import create_app

__all__ = ["create_app"]
