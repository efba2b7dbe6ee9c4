"""STAND-IN: see marty_msf/__init__.py."""
