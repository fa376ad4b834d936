"""Everything that crosses a socket: chat frames (``protocol``) and admin events (``events``).

Pure models and serializers; no I/O. The engines never import this package:
they store and carry what the chat layer built.
"""
