"""The environment a role's process runs under: the target's base environment, the one stored
by ``doctor --fix``, the XSched additions by route, and glibc's splitting of loader variables."""
