"""The environment a role's process runs under, in one place:

- ``base``: where every environment starts (the one stored by ``doctor --fix``, else the target's
  configured environment);
- ``stored_env``: the stored environment (a typed model) and where it lives in the target;
- ``route``: XSched made reachable by route (shim preloaded, or lib folder first), nothing repaired;
- ``builder``: the repaired environment (stale folders dropped, the HAL pointed at the real runtime);
- ``roles``: the environment of each role of a run (native, as configured, computed);
- ``loader_vars``: glibc's splitting of the loader variables.
"""
