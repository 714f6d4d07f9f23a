"""Runner backends, one module per runtime (``<name>_backend.py`` with a ``Backend`` class).

Each module imports only the standard library, numpy and its own runtime, so a device needs just
the runtime it uses.
"""
