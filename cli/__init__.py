"""The ``chatbuddy`` command line: serve, and (later) administer a server."""
