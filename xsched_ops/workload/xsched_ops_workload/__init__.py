"""The workload that runs inside the target: standard library only (plus torch for that backend).

This folder is copied into the target as its own top-level package and must never import
``xsched_ops``. The format of its spec file and of its events is in ../FORMAT.md.
"""

WORKLOAD_VERSION = "1.0.0"
FORMAT_VERSION = 1
