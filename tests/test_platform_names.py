"""Acceptance of the platform table: no code outside it names a platform's files.

Walks every module of ``xsched_ops`` and looks at its string literals (with ``tokenize``), leaving
out docstrings (a string that is a statement by itself) and comments. The platform table and the
sandbox's test data are the only places allowed to name them.
"""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

import xsched_ops

PACKAGE = Path(xsched_ops.__file__).resolve().parent

# Platform file names, device nodes and runtime packages that only the table may name.
PLATFORM_NAMES = ("libshimhip", "libamdhip64", "libhalhip", "libshimcuda", "libhalcuda", "libcuda",
                  "/dev/kfd", "/dev/nvidia", "/opt/rocm")

ALLOWED = {
    "sandbox/scenarios.py": "the sandbox scenarios are test data (each names the files it breaks)",
    "sandbox/image.py": "the sandbox image's list of Debian packages (libamdhip64-5 is the real HIP runtime)",
}

_STRING_TOKENS = {tokenize.STRING}
_BEFORE_DOCSTRING = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}


def string_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal that is not a docstring-like statement."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
              if t.type not in (tokenize.NL, tokenize.COMMENT)]
    found = []
    for index, token in enumerate(tokens):
        if token.type not in _STRING_TOKENS:
            continue
        previous = tokens[index - 1].type if index else tokenize.NEWLINE
        following = tokens[index + 1].type if index + 1 < len(tokens) else tokenize.NEWLINE
        if previous in _BEFORE_DOCSTRING and following in (tokenize.NEWLINE, tokenize.ENDMARKER):
            continue  # a docstring (or a bare string statement): documentation, not code
        found.append((token.start[0], token.string))
    return found


def offending_literals(root: Path) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative in ALLOWED or "__pycache__" in relative:
            continue
        for line, text in string_literals(path.read_text()):
            for name in PLATFORM_NAMES:
                if name in text:
                    problems.append(f"{relative}:{line}: {name} in {text[:80]}")
    return problems


def test_only_the_platform_table_names_platform_files() -> None:
    assert (PACKAGE / "xsched" / "platforms.toml").is_file()
    assert offending_literals(PACKAGE) == []


def test_the_table_names_every_platform_file_the_scan_looks_for() -> None:
    table = (PACKAGE / "xsched" / "platforms.toml").read_text()
    for name in PLATFORM_NAMES:
        assert name in table, name


def test_the_scan_finds_a_name_in_code_and_ignores_docstrings_and_comments(tmp_path: Path) -> None:
    (tmp_path / "module.py").write_text(
        '"""Docstring naming libshimhip.so is fine."""\n'
        "# a comment naming /dev/kfd is fine\n"
        "def f():\n"
        '    """libcuda.so.1 in a docstring is fine."""\n'
        '    return "/opt/x/lib/libshimcuda.so"\n'
        'PATTERNS = ("/dev/nvidia*",)\n'
    )
    problems = offending_literals(tmp_path)
    assert len(problems) == 2, problems
    assert problems[0].startswith("module.py:5: libshimcuda")
    assert problems[1].startswith("module.py:6: /dev/nvidia")
