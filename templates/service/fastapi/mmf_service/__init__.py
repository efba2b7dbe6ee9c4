"""The {{name}} MMF service."""
