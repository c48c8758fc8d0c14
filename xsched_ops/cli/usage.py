"""The command line's conventions, applied to the whole command tree in one place.

* Help says what to type: ``--container NAME``, ``--set KEY=VALUE``, ``--repeat N``; a flag shows no
  type at all (typer would write ``<str>``, ``<bool>``, ``<list[str]>``). One table, ``METAVARS``, names
  the value of each option that several commands share; an option declared with its own ``metavar``
  keeps it; any other gets one from its type (``N``, ``NUMBER``, ``PATH``) or its name.
* Usage lines without braces: ``xsched-ops run [OPTIONS] PROFILE``, ``compare [OPTIONS] A [B]``,
  ``ldd [OPTIONS] FILE...`` (typer writes ``{PROFILE}`` and ``[[B]]``).
* Help wraps between words only: click's wrapper breaks at hyphens (``xsched-ops-`` / ``sandbox:<hash>``,
  ``--max-`` / ``duration``) and cuts words longer than the line; here a name, a path or an option stays
  whole (one longer than the line gets a line of its own).
* A usage error from the parser (unknown option, missing argument, bad value) is one line naming the
  thing and where to look: ``xsched-ops: no such option --foo; see xsched-ops run --help`` (exit 2).

Imported by ``cli.invoke`` after typer (nothing heavy).
"""

from __future__ import annotations

import re
from typing import Any

# The value each shared option takes, as the user types it (the help's metavar).
METAVARS = {
    "--container": "NAME", "--docker-host": "URL", "--xsched-prefix": "PATH", "--platform": "hip|cuda",
    "--route": "preload|libpath", "--role": "high|low", "--format": "FORMAT", "--backend": "torch|sim",
    "--mode": "MODE", "--placement": "PLACEMENT", "--repeat": "N", "--duration": "SECONDS", "--set": "KEY=VALUE",
    "--env": "NAME=VALUE", "--results-dir": "PATH", "--python": "PATH", "--device": "DEVICE", "--out": "PATH",
    "--cwd": "PATH", "--scenario": "SCENARIO", "--baseline-mode": "MODE", "--xsched-mode": "MODE",
}


def _option_metavar(param: Any) -> str:
    for name in param.opts:
        if name in METAVARS:
            return METAVARS[name]
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        if descriptor.is_choice and descriptor.choices:
            return "|".join(str(getattr(choice, "value", choice)) for choice in descriptor.choices)
        if descriptor.is_path:
            return "PATH"
        bare = param.bare_type() if hasattr(param, "bare_type") else ""
        if bare.endswith("int]") or bare == "int":
            return "N"
        if bare.endswith("float]") or bare == "float":
            return "NUMBER"
    longest = max(param.opts, key=len)
    return longest.lstrip("-").replace("-", "_").upper()


def _argument_usage(param: Any) -> Any:
    def usage_name() -> str:
        name = param.display_name_raw
        if param.nargs != 1 and not name.endswith("..."):
            name += "..."
        return name if param.required else f"[{name}]"
    return usage_name


def _help_option_without_type(command: Any) -> Any:
    original = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = original(ctx)
        if option is not None:
            option.metavar = ""
        return option
    return get_help_option


def _parse_args_naming_the_command(command: Any) -> Any:
    """The parser raises some usage errors (an option missing its value) without the command they are
    about; attach it, so that the error line names the right ``--help``."""
    from typer._click.exceptions import UsageError

    original = command.parse_args

    def parse_args(ctx: Any, args: list[str]) -> Any:
        try:
            return original(ctx, args)
        except UsageError as err:
            if err.ctx is None:
                err.ctx, err.cmd = ctx, command
            raise
    return parse_args


def _wrap_help_between_words() -> None:
    import textwrap

    from typer._click import _textwrap

    if getattr(_textwrap.TextWrapper, "whole_words", False):
        return

    class WholeWords(_textwrap.TextWrapper):
        whole_words = True
        _handle_long_word = textwrap.TextWrapper._handle_long_word  # click's own cuts the word

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.update(break_on_hyphens=False, break_long_words=False)
            super().__init__(*args, **kwargs)

    _textwrap.TextWrapper = WholeWords  # type: ignore[misc]  # click's wrap_text imports it when it runs


def tidy(command: Any) -> Any:
    """Give every parameter of ``command`` and its subcommands a metavar that says what to type, and
    usage lines without braces; help wraps between words only (see the module's docstring). Returns
    ``command``."""
    _wrap_help_between_words()
    for param in command.params:
        if param.param_type_name == "argument":
            if param.metavar is None:
                param.metavar = param.name.upper()
            param._usage_display_name = _argument_usage(param)
            param.display_type_rich = lambda ctx: None  # the name says it (NAME, RUN..., FILE...)
        elif param.metavar is None:
            param.metavar = "" if getattr(param, "is_flag", False) or getattr(param, "count", False) \
                else _option_metavar(param)
    command.get_help_option = _help_option_without_type(command)
    command.parse_args = _parse_args_naming_the_command(command)
    for sub in getattr(command, "commands", {}).values():
        if sub.short_help is None and sub.help:
            # the whole first paragraph in the list of commands (click would cut it to the width with "...")
            sub.short_help = " ".join(sub.help.replace("\b", "").strip().split("\n\n")[0].split())
        tidy(sub)
    return command


def _hint(param: Any) -> str:
    if param is None:
        return ""
    if param.param_type_name == "argument":
        return param.display_name_raw
    return " / ".join(param.opts)


def usage_error_line(err: Any) -> str:
    """A usage error as one line: what is wrong, naming the thing, and which help to read."""
    from typer._click.exceptions import BadParameter, MissingParameter, NoSuchOption

    ctx = getattr(err, "ctx", None)
    where = ctx.command_path if ctx is not None else "xsched-ops"
    if isinstance(err, NoSuchOption):
        text = f"no such option {err.option_name}"
        if err.possibilities:
            text += f" (did you mean {', '.join(sorted(err.possibilities))}?)"
    elif isinstance(err, MissingParameter):
        param = err.param
        kind = err.param_type or (param.param_type_name if param is not None else "parameter")
        text = f"missing {kind} {_hint(param)}".rstrip()
    elif isinstance(err, BadParameter):
        hint = _hint(err.param) if err.param is not None else ""
        text = f"invalid value for {hint}: {err.message}" if hint else f"invalid value: {err.message}"
    else:
        text = err.format_message()
        found = re.match(r"No such command '(.*)'\.(?: Did you mean (.*)\?)?$", " ".join(text.split()))
        if found:
            text = f"no such command {found.group(1)}"
            if found.group(2):
                text += f" (did you mean {found.group(2)}?)"
        else:
            text = text[:1].lower() + text[1:]
    text = re.sub(r"'(-{0,2}[\w.-]+)'", r"\1", " ".join(text.split())).rstrip(".")  # 'doctor' -> doctor
    return f"xsched-ops: {text}; see {where} --help"
