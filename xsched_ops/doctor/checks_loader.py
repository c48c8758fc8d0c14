"""Checks that follow the dynamic loader: does the shim load, which file shadows which, and does the
model agree with the real loader in the target (ground truth)."""

from __future__ import annotations

import posixpath
import shlex

from xsched_ops.doctor.check_ids import CheckId
from xsched_ops.doctor.context import DoctorContext
from xsched_ops.doctor.finding_data import DuplicateData, GroundTruthData, GroundTruthFixedData
from xsched_ops.doctor.findings import Finding, fail, info, ok, warn
from xsched_ops.doctor.ground_truth import LoadJob, libraries_for_route, real_loads, without_global_scheduler
from xsched_ops.doctor.registry import check
from xsched_ops.doctor.shim_loads import shim_loads_findings
from xsched_ops.elf.ldcache import read_ld_so_conf
from xsched_ops.elf.reader import read_elf
from xsched_ops.environment.loader_vars import split_path_list, split_preload
from xsched_ops.environment.route import with_xsched_reachable
from xsched_ops.loader import LoadReport, analyze
from xsched_ops.xsched import platforms


def python_path(context: DoctorContext) -> str:
    """The python3 the target would start (first on PATH)."""
    search_path = context.environment.get("PATH") or "/usr/local/bin:/usr/bin:/bin"
    for folder in split_path_list(search_path):
        candidate = posixpath.join(folder or "/", "python3")
        if context.fs.isfile(candidate):
            return candidate
    return "/usr/bin/python3"


def route_of(context: DoctorContext) -> str:
    """The route XSched is reached by: the one asked for, else the platform's default."""
    install = context.install
    assert install is not None
    return context.route or install.platform.default_route


def environment_under_xsched(context: DoctorContext) -> dict[str, str]:
    """The environment as the user runs an XSched process: theirs, with XSched reachable by the route
    (the rule is ``environment.route.with_xsched_reachable``'s, shared with runs and the sandbox probe)."""
    install = context.install
    assert install is not None
    return with_xsched_reachable(context.environment, route_of(context), shim_path=install.shim_path,
                                 lib_dir=install.lib_dir)


def probe_libraries(context: DoctorContext) -> list[str]:
    """What the ground-truth python3 loads with ctypes: the runtime's soname for the libpath route
    (nothing loads it at startup), nothing for the preload route."""
    install = context.install
    assert install is not None
    return libraries_for_route(install.platform, route_of(context))


def provider_folders(context: DoctorContext, env: dict[str, str]) -> list[str]:
    """Where a file that *does* define a missing symbol is looked for."""
    install = context.install
    folders: list[str] = [install.lib_dir] if install else []
    folders += [f for f in split_path_list(env.get("LD_LIBRARY_PATH", "")) if f.startswith("/")]
    try:
        folders += read_ld_so_conf(context.fs)
    except OSError:
        pass
    for platform in platforms.all_platforms():
        folders += platform.runtime_search_dirs
    folders += platforms.SYSTEM_LIB_DIRS
    unique: list[str] = []
    for folder in folders:
        if folder not in unique:
            unique.append(folder)
    return unique


def model(context: DoctorContext, env: dict[str, str]) -> LoadReport:
    """The loader model of python3 under ``env``; for the libpath route the probe's dlopen of the
    runtime's soname is modelled as a preload of that name (searched like a DT_NEEDED of python3)."""
    libraries = probe_libraries(context) if context.install is not None else []
    if libraries:
        env = {**env, "LD_PRELOAD": " ".join([*libraries, *split_preload(env.get("LD_PRELOAD", ""))])}
    key = (python_path(context), tuple(sorted(env.items())))
    if key not in context.loader_reports:
        context.loader_reports[key] = analyze(context.fs, key[0], env, "/")
    return context.loader_reports[key]


def _fix_commands(context: DoctorContext) -> list[str]:
    built = context.fixed_environment
    if built is None:
        return []
    return [f"export {name}={shlex.quote(value)}" for name, value in built.xsched_only().items()]


@check(CheckId.SHIM_LOADS, "loader", "the shim loads")
def check_shim_loads(context: DoctorContext) -> list[Finding]:
    """One finding per cause (see ``shim_loads``), explained from the loader model's own resolution."""
    install = context.install
    if install is None or not context.fs.isfile(install.shim_path):
        return []
    env = environment_under_xsched(context)
    return shim_loads_findings(context, model(context, env), provider_folders(context, env), _fix_commands(context))


@check(CheckId.DUPLICATES, "loader", "duplicate XSched libraries")
def check_duplicates(context: DoctorContext) -> list[Finding]:
    install = context.install
    if install is None:
        return []
    env = environment_under_xsched(context)
    report = model(context, env)
    folders = provider_folders(context, env)
    findings: list[Finding] = []
    for name in (install.platform.hal, platforms.common().preempt_lib, install.platform.shim):
        copies = [posixpath.join(f, name) for f in folders if context.fs.isfile(posixpath.join(f, name))]
        real_copies: list[str] = []
        for path in copies:
            if context.fs.realpath(path) not in [context.fs.realpath(c) for c in real_copies]:
                real_copies.append(path)
        if len(real_copies) < 2:
            continue
        loaded = next((o for o in report.objects if posixpath.basename(o.path) == name
                       or (o.soname == name)), None)
        ours = posixpath.join(install.lib_dir, name)
        if loaded is None or context.fs.realpath(loaded.path) == context.fs.realpath(ours):
            findings.append(warn(CheckId.DUPLICATES, "loader", f"{name} exists in {len(real_copies)} folders",
                                 "the install's copy is the one loaded now; another order of LD_LIBRARY_PATH would "
                                 "load " + ", ".join(c for c in real_copies if c != ours),
                                 data=DuplicateData(copies=real_copies)))
            continue
        try:
            loaded_defs = set(read_elf(context.fs, loaded.path).symbols().definitions)
            our_defs = set(read_elf(context.fs, ours).symbols().definitions)
        except Exception:
            loaded_defs, our_defs = set(), set()
        lacking = sorted(our_defs - loaded_defs)
        findings.append(fail(CheckId.DUPLICATES, "loader", f"stale {name} at {loaded.path} shadows {ours}",
            f"the loader picks {loaded.path} ({loaded.reason}); it lacks {len(lacking)} symbols the install's "
            f"copy has" + (f", e.g. {', '.join(lacking[:3])}" if lacking else ""),
            f"put {install.lib_dir} first on LD_LIBRARY_PATH (doctor --fix), or move the stale copy aside "
            "(doctor --fix --allow-lib-changes)",
            _fix_commands(context), data=DuplicateData(
                loaded_provider=loaded.path, loaded_provider_reason=loaded.reason, expected_provider=ours,
                copies=real_copies, lacking=lacking[:50])))
    return findings or [ok(CheckId.DUPLICATES, "loader", "no duplicate XSched libraries on the search path")]


@check(CheckId.GROUND_TRUTH, "loader", "model agrees with the real loader", emits=(CheckId.GROUND_TRUTH_FIXED,))
def check_ground_truth(context: DoctorContext) -> list[Finding]:
    install = context.install
    if install is None or not context.fs.isfile(install.shim_path):
        return []
    torch_present = isinstance(context.probe.get("torch"), dict)
    findings: list[Finding] = []
    env = environment_under_xsched(context)
    predicted = model(context, env)
    predicted_shim = predicted.object_for(install.shim_path) is not None and predicted.would_start
    load_env, scheduler_note = without_global_scheduler(env)
    jobs = [LoadJob(load_env, probe_libraries(context))]
    built = context.fixed_environment
    if built is not None:
        fixed_libraries = libraries_for_route(install.platform, built.route)
        real_runtime = built.env.get(install.platform.runtime_lib_env) or built.real_runtime
        # With the libpath route the shim is reached through the runtime's soname; the real runtime
        # must be loadable too (the HAL dlopens it by path), so the probe loads both.
        if built.route == "libpath" and real_runtime:
            fixed_libraries = [*fixed_libraries, real_runtime]
        jobs.append(LoadJob(without_global_scheduler(built.env)[0], fixed_libraries, torch_present))
    # Both python3s in one command in the target: the user's environment, then the computed one.
    loads = real_loads(context.target, jobs)
    actual = loads[0]
    actual_shim = actual.started and actual.has_mapped(install.platform.shim)
    evidence = GroundTruthData(model_would_start=predicted.would_start, model_shim_loaded=predicted_shim,
                               real=actual.as_dict(), model_fatal_error=predicted.fatal_error)
    if predicted.would_start != actual.started or predicted_shim != actual_shim:
        findings.append(fail(CheckId.GROUND_TRUTH, "loader", "the loader model and the real loader disagree",
            f"model: starts={predicted.would_start}, shim loaded={predicted_shim} ({predicted.fatal_error}); "
            f"real python3: started={actual.started}, shim mapped={actual_shim} "
            f"({'; '.join(actual.loader_messages) or 'no loader message'})",
            "please report this with `xsched-ops doctor --json` output; trust the real loader", data=evidence))
    else:
        findings.append(ok(CheckId.GROUND_TRUTH, "loader",
                           f"model and real loader agree: python3 {'starts' if actual.started else 'fails'} "
                           f"with the shim {'mapped' if actual_shim else 'not mapped'}",
                           "; ".join([*actual.loader_messages, *([scheduler_note] if scheduler_note else [])]),
                           data=evidence))
    if built is not None:
        fixed = loads[1]
        runtime_mapped = True
        if built.route == "libpath" and real_runtime:
            runtime_real_path = context.fs.realpath(real_runtime)
            runtime_mapped = runtime_real_path in fixed.mapped or real_runtime in fixed.mapped
        if fixed.started and fixed.has_mapped(install.platform.shim) and runtime_mapped:
            findings.append(ok(CheckId.GROUND_TRUTH_FIXED, "loader",
                               "with the computed environment python3 starts with the shim mapped"
                               + (f" and the real runtime {real_runtime} reachable"
                                  if built.route == "libpath" and real_runtime else "")
                               + (" (and torch imported)" if torch_present else ""),
                               f"shim at {fixed.mapped_path(install.platform.shim)}",
                               data=GroundTruthFixedData(real=fixed.as_dict(), real_runtime=real_runtime)))
        elif fixed.started and fixed.has_mapped(install.platform.shim):
            findings.append(fail(CheckId.GROUND_TRUTH_FIXED, "loader",
                                 f"the shim loads, but the real runtime {real_runtime} does not",
                                 "; ".join(fixed.loader_messages) or fixed.stderr[-300:],
                                 f"point {install.platform.runtime_lib_env} at a loadable "
                                 f"{install.platform.runtime_libs[0]}",
                                 data=GroundTruthFixedData(real=fixed.as_dict(), real_runtime=real_runtime)))
        else:
            findings.append(fail(CheckId.GROUND_TRUTH_FIXED, "loader",
                                 "even the computed environment does not load the shim",
                                 "; ".join(fixed.loader_messages) or fixed.stderr[-300:],
                                 "the install itself is broken: see the other findings (rebuild XSched)",
                                 data=GroundTruthFixedData(real=fixed.as_dict())))
    return findings


@check(CheckId.LOADER_INFO, "loader", "loader summary")
def check_loader_info(context: DoctorContext) -> list[Finding]:
    return [info(CheckId.LOADER_INFO, "loader", f"environment checked: {context.environment_source}")] \
        if context.stored is not None else []
