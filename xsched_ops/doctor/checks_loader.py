"""Checks that follow the dynamic loader: does the shim load, which file shadows which, and does the
model agree with the real loader in the target (ground truth)."""

from __future__ import annotations

import posixpath
import shlex
from typing import Any

from xsched_ops.doctor.check_ids import CheckId
from xsched_ops.doctor.context import DoctorContext
from xsched_ops.doctor.findings import Finding, fail, info, ok, warn
from xsched_ops.doctor.ground_truth import LoadJob, libraries_for_route, real_loads, without_global_scheduler
from xsched_ops.doctor.registry import check
from xsched_ops.elf.ldcache import read_ld_so_conf
from xsched_ops.elf.reader import read_elf
from xsched_ops.environment.loader_vars import split_path_list, split_preload
from xsched_ops.loader import LoadReport, analyze, find_definers
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
    """The environment as the user runs an XSched process: theirs, with XSched reachable by the route.

    * preload: an LD_PRELOAD entry that is the install's shim is kept; otherwise the shim is added
      in front (a misspelled entry stays: the loader would only warn about it);
    * libpath: the install's lib folder goes first on LD_LIBRARY_PATH, so the runtime's soname
      resolves to the shim's softlink (the rest of the user's LD_LIBRARY_PATH is kept as it is).
    """
    env = dict(context.environment)
    install = context.install
    assert install is not None
    if route_of(context) == "preload":
        preloads = split_preload(env.get("LD_PRELOAD", ""))
        if install.shim_path not in preloads:
            env["LD_PRELOAD"] = " ".join([install.shim_path, *preloads])
    else:
        entries = split_path_list(env.get("LD_LIBRARY_PATH", ""))
        if not entries or entries[0] != install.lib_dir:
            env["LD_LIBRARY_PATH"] = ":".join([install.lib_dir, *entries])
    return env


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


def _is_xsched_object(context: DoctorContext, path: str) -> bool:
    install = context.install
    names = {install.platform.shim, install.platform.hal, platforms.common().preempt_lib} if install else set()
    return posixpath.basename(path) in names


# Ranks of the symbols inside a finding: what tells the cause first (a class's typeinfo and vtable
# name the class whose definition is missing), then the rest by name.
_SYMBOL_RANK = (("typeinfo for ", 0), ("typeinfo name for ", 1), ("vtable for ", 2), ("VTT for ", 3),
                ("construction vtable for ", 3))


def _symbol_rank(demangled: str) -> int:
    return next((rank for prefix, rank in _SYMBOL_RANK if demangled.startswith(prefix)), 4)


def _symbol_entry(symbol: Any) -> dict[str, Any]:
    return {"symbol": symbol.symbol, "demangled": symbol.demangled, "version": symbol.version, "when": symbol.when,
            "loader_message": symbol.message}


def _symbol_line(entry: dict[str, Any]) -> str:
    """``  typeinfo for xsched::hip::HipCommand (_ZTIN6xsched3hip10HipCommandE)``: both names, whole."""
    mangled, demangled = entry["symbol"], entry["demangled"]
    return f"  {demangled} ({mangled})" if demangled and demangled != mangled else f"  {mangled}"


def _symbols_block(entries: list[dict[str, Any]], needed_by: str, note: str = "") -> str:
    at_startup = sum(1 for entry in entries if entry["when"] == "startup")
    versions = sorted({entry["version"] for entry in entries if entry["version"]})
    head = (f"undefined in {posixpath.basename(needed_by)} ({len(entries)} symbol{'s' if len(entries) != 1 else ''}"
            + (f", version {', '.join(versions)}" if versions else "")
            + (f"; {at_startup} bound at startup: the process dies before main" if at_startup else
               "; bound lazily: the process dies at the first call")
            + ")" + note + ":")
    return "\n".join([head, *(_symbol_line(entry) for entry in entries)])


def _group_title(entries: list[dict[str, Any]], needed_by: str) -> str:
    first = entries[0]
    named = first["demangled"] if first["demangled"] and first["demangled"] != first["symbol"] else first["symbol"]
    if len(entries) == 1:
        return f"{posixpath.basename(needed_by)}: undefined symbol {first['symbol']} ({named})"
    return f"{posixpath.basename(needed_by)}: {len(entries)} undefined symbols ({named} and {len(entries) - 1} more)"


def _version_provider(context: DoctorContext, problem: Any, folders: list[str]) -> str | None:
    """A file named like the loaded provider, on the search folders, that does define the missing version."""
    for folder in folders:
        candidate = posixpath.join(folder, problem.file)
        if candidate == problem.provider or not context.fs.isfile(candidate):
            continue
        try:
            definitions = read_elf(context.fs, candidate).version_definitions
        except Exception:
            continue
        if any(d.name == problem.version for d in definitions):
            return candidate
    return None


@check(CheckId.SHIM_LOADS, "loader", "the shim loads")
def check_shim_loads(context: DoctorContext) -> list[Finding]:
    """One finding per cause: missing libraries grouped by the object that needs them (and where a copy
    lies), version problems and undefined symbols by (needing object, loaded provider, expected
    provider); a version problem takes in the undefined symbols of the same three files (one stale copy
    explains both). ``data`` keeps the first (most telling) symbol, version or library under the
    single keys (``symbol``, ``version``, ``needed``) and every one of them in lists."""
    install = context.install
    if install is None or not context.fs.isfile(install.shim_path):
        return []
    env = environment_under_xsched(context)
    report = model(context, env)
    findings: list[Finding] = []
    fix_text = "run with the environment `xsched-ops env` computes (doctor --fix stores it for xsched-ops runs)"
    folders = provider_folders(context, env)

    missing_groups: dict[tuple[str, str | None], list[tuple[Any, str | None]]] = {}
    for missing in report.not_found:
        if not _is_xsched_object(context, missing.needed_by):
            continue
        expected = next((posixpath.join(f, missing.name) for f in folders
                         if context.fs.isfile(posixpath.join(f, missing.name))), None)
        key = (missing.needed_by, posixpath.dirname(expected) if expected else None)
        missing_groups.setdefault(key, []).append((missing, expected))
    symbol_groups: dict[tuple[str, str | None, str | None], list[tuple[Any, str | None]]] = {}
    for symbol in report.unresolved_symbols:
        if not _is_xsched_object(context, symbol.needed_by):
            continue
        expected = symbol.expected_provider.path if symbol.expected_provider else None
        expected_reason = symbol.expected_provider.reason if symbol.expected_provider else None
        if expected is None:
            definers = find_definers(context.fs, symbol.symbol, folders, symbol.version)
            expected = definers[0] if definers else None
            expected_reason = "defines it (searched the XSched prefix, LD_LIBRARY_PATH, ld.so.conf folders)" \
                if expected else None
        loaded = symbol.loaded_provider.path if symbol.loaded_provider else None
        symbol_groups.setdefault((symbol.needed_by, loaded, expected), []).append((symbol, expected_reason))
    for group in symbol_groups.values():
        group.sort(key=lambda item: (_symbol_rank(item[0].demangled), item[0].demangled or item[0].symbol))

    for (needed_by, _folder), group in missing_groups.items():
        names = [missing.name for missing, _ in group]
        expected_paths = [expected for _, expected in group]
        first, expected = group[0]
        lines = [f"{missing.name}: {missing.message}; tried {len(missing.tried)} paths: "
                 + ", ".join(s.path for s in missing.tried) for missing, _ in group]
        if expected:
            lines.append("a copy lies outside the search path: " + ", ".join(p for p in expected_paths if p))
        # Symbols of the same object that nothing loaded defines are what the missing library would
        # have provided (the real loader stops at the library and never names them): the same cause.
        consequences = [key for key in symbol_groups if key[0] == needed_by and key[1] is None
                        and (key[2] is None or posixpath.basename(key[2]) in names)]
        symbols = sorted((item for key in consequences for item in symbol_groups.pop(key)),
                         key=lambda item: (_symbol_rank(item[0].demangled), item[0].demangled or item[0].symbol))
        entries = [_symbol_entry(symbol) for symbol, _ in symbols]
        if entries:
            lines.append(_symbols_block(entries, needed_by, " while it is missing"))
        symbol_data: dict[str, Any] = {}
        if entries:
            symbol_data = {"symbol": entries[0]["symbol"], "demangled": entries[0]["demangled"], "symbols": entries}
        findings.append(fail(CheckId.SHIM_LOADS, "loader",
            f"{', '.join(names)}, needed by {posixpath.basename(needed_by)}, "
            + ("is" if len(names) == 1 else "are") + " not found",
            "\n".join(lines),
            "install the missing library (rebuild XSched: `make install`)" if expected is None else fix_text,
            _fix_commands(context) if expected else [],
            needed=first.name, needed_libraries=names, needed_by=needed_by, expected_provider=expected,
            expected_providers=expected_paths, tried=[step.path for step in first.tried],
            tried_by_library={missing.name: [step.path for step in missing.tried] for missing, _ in group},
            **symbol_data))

    version_groups: dict[tuple[str, str, str | None], list[Any]] = {}
    for problem in report.version_problems:
        if problem.severity != "error":
            continue
        key = (problem.needed_by, problem.provider, _version_provider(context, problem, folders))
        version_groups.setdefault(key, []).append(problem)
    for (needed_by, provider, expected), problems in version_groups.items():
        versions = list(dict.fromkeys(problem.version for problem in problems))
        loaded = report.object_for(provider)
        symbols = symbol_groups.pop((needed_by, provider, expected), [])
        entries = [_symbol_entry(symbol) for symbol, _ in symbols]
        lines = [problem.message for problem in problems]
        lines.append(f"the loader picked {provider}" + (f" ({loaded.reason})" if loaded else "")
                     + (f"; {expected} does define {', '.join(versions)}" if expected else ""))
        if entries:
            lines.append(_symbols_block(entries, needed_by))
        symbol_data: dict[str, Any] = {}
        if entries:
            symbol_data = {"symbol": entries[0]["symbol"], "demangled": entries[0]["demangled"], "symbols": entries}
        findings.append(fail(CheckId.SHIM_LOADS, "loader",
            f"version {', '.join(versions)} not found in {provider}"
            + (f" ({len(entries)} symbols of {posixpath.basename(needed_by)} undefined with it)" if entries else ""),
            "\n".join(lines), fix_text, _fix_commands(context),
            version=versions[0], versions=versions, needed_by=needed_by, loaded_provider=provider,
            loaded_provider_reason=loaded.reason if loaded else None, expected_provider=expected, **symbol_data))

    for (needed_by, loaded_path, expected), group in symbol_groups.items():
        first, expected_reason = group[0]
        loaded = first.loaded_provider
        entries = [_symbol_entry(symbol) for symbol, _ in group]
        them = "it" if len(entries) == 1 else "them"
        if loaded is not None:
            why = (f"the loader picked {loaded.path} ({loaded.reason}), which does not define {them}"
                   + (f"; {expected} does" + (f" ({expected_reason})" if expected_reason else "") if expected else ""))
        else:
            why = (f"no object in the global scope defines {them}: {posixpath.basename(needed_by)} "
                   "has no DT_NEEDED on a library that does (underlinked)"
                   + (f"; {expected} does define {them}" if expected else ""))
        findings.append(fail(CheckId.SHIM_LOADS, "loader", _group_title(entries, needed_by),
            why + "\n" + _symbols_block(entries, needed_by), fix_text, _fix_commands(context),
            symbol=first.symbol, demangled=first.demangled, needed_by=needed_by, version=first.version,
            when="startup" if any(entry["when"] == "startup" for entry in entries) else first.when,
            loaded_provider=loaded_path, loaded_provider_reason=loaded.reason if loaded else None,
            expected_provider=expected, expected_provider_reason=expected_reason, loader_message=first.message,
            symbols=entries))
    if not findings:
        shim = report.object_for(install.shim_path)
        findings.append(ok(CheckId.SHIM_LOADS, "loader",
                           f"the shim loads: {len(report.objects)} objects, every needed library and symbol resolves",
                           f"{install.shim_path}: {shim.reason if shim else 'not in the load list'}",
                           objects=len(report.objects)))
    return findings


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
                                 copies=real_copies))
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
            _fix_commands(context), loaded_provider=loaded.path, loaded_provider_reason=loaded.reason,
            expected_provider=ours, copies=real_copies, lacking=lacking[:50]))
    return findings or [ok(CheckId.DUPLICATES, "loader", "no duplicate XSched libraries on the search path")]


@check(CheckId.GROUND_TRUTH, "loader", "model agrees with the real loader")
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
    evidence: dict[str, Any] = {"model_would_start": predicted.would_start, "model_shim_loaded": predicted_shim,
                                "real": actual.as_dict(), "model_fatal_error": predicted.fatal_error}
    if predicted.would_start != actual.started or predicted_shim != actual_shim:
        findings.append(fail(CheckId.GROUND_TRUTH, "loader", "the loader model and the real loader disagree",
            f"model: starts={predicted.would_start}, shim loaded={predicted_shim} ({predicted.fatal_error}); "
            f"real python3: started={actual.started}, shim mapped={actual_shim} "
            f"({'; '.join(actual.loader_messages) or 'no loader message'})",
            "please report this with `xsched-ops doctor --json` output; trust the real loader", **evidence))
    else:
        findings.append(ok(CheckId.GROUND_TRUTH, "loader",
                           f"model and real loader agree: python3 {'starts' if actual.started else 'fails'} "
                           f"with the shim {'mapped' if actual_shim else 'not mapped'}",
                           "; ".join([*actual.loader_messages, *([scheduler_note] if scheduler_note else [])]),
                           **evidence))
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
                               f"shim at {fixed.mapped_path(install.platform.shim)}", real=fixed.as_dict(),
                               real_runtime=real_runtime))
        elif fixed.started and fixed.has_mapped(install.platform.shim):
            findings.append(fail(CheckId.GROUND_TRUTH_FIXED, "loader",
                                 f"the shim loads, but the real runtime {real_runtime} does not",
                                 "; ".join(fixed.loader_messages) or fixed.stderr[-300:],
                                 f"point {install.platform.runtime_lib_env} at a loadable "
                                 f"{install.platform.runtime_libs[0]}", real=fixed.as_dict(), real_runtime=real_runtime))
        else:
            findings.append(fail(CheckId.GROUND_TRUTH_FIXED, "loader",
                                 "even the computed environment does not load the shim",
                                 "; ".join(fixed.loader_messages) or fixed.stderr[-300:],
                                 "the install itself is broken: see the other findings (rebuild XSched)",
                                 real=fixed.as_dict()))
    return findings


@check(CheckId.LOADER_INFO, "loader", "loader summary")
def check_loader_info(context: DoctorContext) -> list[Finding]:
    return [info(CheckId.LOADER_INFO, "loader", f"environment checked: {context.environment_source}")] \
        if context.stored is not None else []
