"""Whether XSched 1.2 would schedule a process's queue, from evidence about the process.

Mirrors what XSched really does (``decide_xsched``): a ``libshim*.so`` mapped in the process; the
scheduler XSched creates from its environment (``effective_scheduler``: a valid ``XSCHED_POLICY``
gives a local scheduler, else ``XSCHED_SCHEDULER=GLB`` the global one, anything else the
app-managed one); for the local scheduler the knobs from the environment; for the global one the
xserver's own view (``GET /xqueues``). Standard library only: this runs inside the target.
"""

from __future__ import annotations

import http.client
import json
import os
import time

KNOWN_POLICIES = ("HPF", "HHPF", "CHPF", "UP", "PUP", "SPUP", "KEDF", "LAX", "AWF", "CFS", "MLFQ")
PRIORITY_POLICIES = ("HPF", "HHPF", "CHPF")
DEFAULT_THRESHOLD = 16
DEFAULT_BATCH_SIZE = 8
VALID_LEVELS = (1, 2, 3)
XSERVER_WAIT_S = 3.0  # registration reaches the xserver asynchronously (it polls every ~50 ms)
XSERVER_POLL_S = 0.1
XSERVER_TIMEOUT_S = 1.0
WATCH_INTERVAL_S = 0.5


def effective_scheduler(env: dict[str, str]) -> tuple[str, str]:
    """Which scheduler XSched 1.2 creates for a process with ``env``: ("local" | "global" | "app", why).

    A copy of the rule in ``xsched_ops.xsched.settings.effective_scheduler`` (the workload cannot
    import the host package; tests/test_simdevice_decision.py checks that the two agree): a valid
    XSCHED_POLICY (exact, case-sensitive) -> local, XSCHED_SCHEDULER ignored; else
    XSCHED_SCHEDULER=GLB -> global; everything else (unset, APP, LCL without a valid policy,
    XSCHED_POLICY=GBL) -> app-managed, where nothing is scheduled.
    """
    policy = env.get("XSCHED_POLICY")
    scheduler = env.get("XSCHED_SCHEDULER")
    if policy in KNOWN_POLICIES:
        reason = f"XSCHED_POLICY={policy} is a policy: each process gets its own local scheduler"
        if scheduler is not None and scheduler != "LCL":
            reason += f" (XSCHED_SCHEDULER={scheduler} is ignored)"
        return "local", reason
    ignored = f" (XSCHED_POLICY={policy} is not a policy and is ignored)" if policy is not None else ""
    if scheduler == "GLB":
        return "global", "XSCHED_SCHEDULER=GLB: the xserver schedules the process" + ignored
    if scheduler == "LCL":
        why = "XSCHED_SCHEDULER=LCL without a valid XSCHED_POLICY falls through to the app-managed scheduler"
    elif scheduler is None or scheduler == "APP":
        why = ("XSCHED_SCHEDULER=APP" if scheduler else "neither XSCHED_SCHEDULER=GLB nor a valid XSCHED_POLICY"
               ) + ": the app-managed scheduler"
    else:
        why = f"XSCHED_SCHEDULER={scheduler} is not a scheduler: the app-managed scheduler"
    return "app", why + ignored + "; nothing is scheduled unless the application does it"


def _int_env(env: dict[str, str], key: str, default: int, notes: list[str]) -> int:
    text = env.get(key)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        notes.append(f"{key}={text!r} is not an integer, default {default} used")
        return default


class XServerUnavailable(Exception):
    """Nothing answers on the xserver's port as an XSched xserver does; the text says what happened."""


def query_xserver(host: str, port: int, path: str = "/xqueues", timeout_s: float = XSERVER_TIMEOUT_S) -> dict:
    """``GET path`` from the xserver's HTTP port, as JSON. Raises XServerUnavailable."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as err:
        raise XServerUnavailable(f"{type(err).__name__}: {err}") from err
    finally:
        conn.close()
    if response.status != 200:
        raise XServerUnavailable(f"GET {path} answered HTTP {response.status}")
    try:
        answer = json.loads(body)
    except ValueError as err:
        raise XServerUnavailable(f"GET {path} answered something that is not JSON ({body[:80]!r})") from err
    if not isinstance(answer, dict):
        raise XServerUnavailable(f"GET {path} answered {type(answer).__name__}, not a JSON object")
    return answer


def xserver_answers(host: str, port: int, timeout_s: float = XSERVER_TIMEOUT_S) -> tuple[bool, str]:
    """Whether the xserver answers ``GET /policy`` at host:port (and, if not, why)."""
    try:
        answer = query_xserver(host, port, "/policy", timeout_s)
    except XServerUnavailable as err:
        return False, str(err)
    return True, f"policy {answer.get('policy')}"


def _pid_entries(view: dict, pid: int) -> tuple[bool, list[dict]]:
    """(whether ``pid`` is among the xserver's processes, its XQueues) from a ``/xqueues`` answer."""
    processes = view.get("processes")
    xqueues = view.get("xqueues")
    if not isinstance(processes, list) or not isinstance(xqueues, list):
        raise XServerUnavailable("GET /xqueues answered without the lists 'processes' and 'xqueues'")
    connected = any(isinstance(p, dict) and p.get("pid") == pid for p in processes)
    mine = [q for q in xqueues if isinstance(q, dict) and q.get("pid") == pid]
    return connected or bool(mine), mine


def _level_problem(level_text: str | None, shim_paths: list[str]) -> str | None:
    """Why XSched creates no XQueue at this XSCHED_AUTO_XQUEUE_LEVEL (None: it creates them)."""
    if level_text is None or level_text == "":
        return None  # default level 1
    try:
        level = int(level_text)
    except ValueError:
        return f"XSCHED_AUTO_XQUEUE_LEVEL={level_text!r} is not a level: XSched warns and creates no XQueue"
    if level not in VALID_LEVELS:
        return f"XSCHED_AUTO_XQUEUE_LEVEL={level} is outside 1..3: XSched warns and creates no XQueue"
    if level > 1 and shim_paths and all("hip" in os.path.basename(p).lower() for p in shim_paths):
        return f"XSCHED_AUTO_XQUEUE_LEVEL={level}: HIP implements level 1 only, XSched creates no XQueue"
    return None


def _decide_global(shim_paths: list[str], env: dict[str, str], pid: int, why: str, xserver_query,
                   xserver_address: str, wait_s: float, poll_s: float) -> dict:
    inactive = {"xsched_active": False, "scope": None, "scheduler": "global", "evidence": "xserver",
                "priority": None, "threshold": None, "batch_size": None, "level": None, "xqueues": 0}
    auto = env.get("XSCHED_AUTO_XQUEUE")
    level_text = env.get("XSCHED_AUTO_XQUEUE_LEVEL")
    expect_xqueue = auto == "ON" and _level_problem(level_text, shim_paths) is None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            connected, mine = _pid_entries(xserver_query(), pid)
        except XServerUnavailable as err:
            return {**inactive, "reason": f"XSCHED_SCHEDULER=GLB but no xserver answers on {xserver_address}: {err} "
                                          "(no global scheduler: native queue)"}
        # Registration is asynchronous: wait for the XQueues, or for the connection alone when the
        # environment says none will come.
        if mine or (connected and not expect_xqueue) or time.monotonic() >= deadline:
            break
        time.sleep(poll_s)
    if not mine:
        if not connected:
            return {**inactive, "reason": f"the xserver never saw process {pid} connect (waited {wait_s:g} s; "
                                          f"{why}): no global scheduler (native queue)"}
        if auto != "ON":
            because = "XSCHED_AUTO_XQUEUE is not ON"
        else:
            because = _level_problem(level_text, shim_paths) or f"none reached the xserver within {wait_s:g} s"
        return {**inactive, "reason": f"process {pid} connected to the xserver but created no XQueue "
                                      f"(XSCHED_AUTO_XQUEUE={auto or 'unset'}, level {level_text or '1 (default)'}: "
                                      f"{because}): nothing scheduled (native queue)"}
    notes: list[str] = []
    first = mine[0]
    values: dict[str, int] = {}
    for key, env_key, default in (("priority", "XSCHED_AUTO_XQUEUE_PRIORITY", 0),
                                  ("threshold", "XSCHED_AUTO_XQUEUE_THRESHOLD", DEFAULT_THRESHOLD),
                                  ("batch_size", "XSCHED_AUTO_XQUEUE_BATCH_SIZE", DEFAULT_BATCH_SIZE),
                                  ("level", "XSCHED_AUTO_XQUEUE_LEVEL", 1)):
        configured = _int_env(env, env_key, default, [])
        value = first.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            notes.append(f"the xserver lists no {key}: {env_key} ({configured}) used")
            value = configured
        elif value != configured:
            notes.append(f"{env_key} gives {configured} but the xserver has {value}")
        others = sorted({q.get(key) for q in mine if isinstance(q.get(key), int)} - {value})
        if others:
            notes.append(f"the xserver's XQueues of process {pid} differ in {key} "
                         f"({', '.join(str(v) for v in [value, *others])}): the first one's used")
        values[key] = value
    threshold = max(1, values["threshold"])
    batch_size = min(threshold, max(1, values["batch_size"]))
    if (threshold, batch_size) != (values["threshold"], values["batch_size"]):
        notes.append(f"threshold/batch {values['threshold']}/{values['batch_size']} simulated as {threshold}/{batch_size}")
    if values["level"] != 1:
        notes.append(f"level {values['level']} simulated as level 1")
    summary = (f"the xserver on {xserver_address} lists {len(mine)} XQueue(s) of process {pid}: "
               f"priority {values['priority']}, threshold {threshold}, batch {batch_size}")
    return {"xsched_active": True, "scope": "global", "scheduler": "global", "evidence": "xserver",
            "priority": values["priority"], "threshold": threshold, "batch_size": batch_size,
            "level": values["level"], "xqueues": len(mine),
            "reason": "; ".join([f"shim mapped, {why}", summary, *notes])}


def decide_xsched(shim_paths: list[str], env: dict[str, str], pid: int, xserver_query,
                  xserver_address: str = "the xserver's port", wait_s: float = XSERVER_WAIT_S,
                  poll_s: float = XSERVER_POLL_S) -> dict:
    """XSched semantics for one queue, from the process's evidence. Pure apart from ``xserver_query``.

    ``xserver_query()`` returns the xserver's ``GET /xqueues`` answer (a dict) or raises
    XServerUnavailable; it is only called for the global scheduler, repeatedly for up to
    ``wait_s`` while the process's XQueues have not reached the xserver.
    """
    inactive = {"xsched_active": False, "scope": None, "scheduler": None, "evidence": "environment",
                "priority": None, "threshold": None, "batch_size": None, "level": None}
    if not shim_paths:
        return {**inactive, "reason": "no libshim*.so mapped in the process: XSched is not loaded (native queue)"}
    kind, why = effective_scheduler(env)
    if kind == "app":
        return {**inactive, "scheduler": "app", "reason": f"shim mapped, {why} (native queue)"}
    if kind == "global":
        return _decide_global(shim_paths, env, pid, why, xserver_query, xserver_address, wait_s, poll_s)
    inactive["scheduler"] = "local"
    if env.get("XSCHED_AUTO_XQUEUE") != "ON":
        return {**inactive, "reason": f"shim mapped, {why}, but XSCHED_AUTO_XQUEUE is not ON: "
                                      "no XQueue is created (native queue)"}
    problem = _level_problem(env.get("XSCHED_AUTO_XQUEUE_LEVEL"), shim_paths)
    if problem:
        return {**inactive, "reason": f"shim mapped, {why}; {problem} (native queue)"}
    notes = [f"shim mapped, {why}: no priority across processes"]
    policy = env["XSCHED_POLICY"]
    if policy not in PRIORITY_POLICIES:
        notes.append(f"policy {policy} simulated as HPF")
    priority = _int_env(env, "XSCHED_AUTO_XQUEUE_PRIORITY", 0, notes)
    threshold = max(1, _int_env(env, "XSCHED_AUTO_XQUEUE_THRESHOLD", DEFAULT_THRESHOLD, notes))
    batch_size = min(threshold, max(1, _int_env(env, "XSCHED_AUTO_XQUEUE_BATCH_SIZE", DEFAULT_BATCH_SIZE, notes)))
    level = _int_env(env, "XSCHED_AUTO_XQUEUE_LEVEL", 1, notes)
    if level != 1:
        notes.append(f"level {level} simulated as level 1")
    return {"xsched_active": True, "scope": f"local:{pid}", "scheduler": "local", "evidence": "environment",
            "priority": priority, "threshold": threshold, "batch_size": batch_size, "level": level,
            "reason": "; ".join(notes)}

