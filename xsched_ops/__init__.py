"""xsched-ops: repair XSched environments in GPU containers and run trustworthy latency experiments."""

__version__ = "0.1.0"
