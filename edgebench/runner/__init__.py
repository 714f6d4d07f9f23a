"""edgebench's on-device runner: plain files, standard library only (numpy and one runtime on top).

The transports run ``edgebench_runner.py`` (and ``edgebench_probe.py``) from this folder as it is, locally or
pushed to a board; nothing here imports edgebench. The host imports ``job`` for the job schema.
"""
