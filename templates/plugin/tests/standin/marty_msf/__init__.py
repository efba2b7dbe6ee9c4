"""STAND-IN for the Marty Microservices Framework, shipped by `mmf generate plugin` so the
plugin's tests run where marty_msf is not installed. It is NOT the framework: only the small
part of its plugin API these tests use. tests/conftest.py puts it on the path only when the
real marty_msf cannot be imported."""

STANDIN = True
