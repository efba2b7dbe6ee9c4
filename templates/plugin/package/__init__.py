"""The {{name}} plugin for the Marty Microservices Framework."""

from .plugin import {{class}}

__all__ = ["{{class}}"]
