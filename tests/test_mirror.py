"""The sandbox image's Debian mirror comes from the user (issue 15, part 6): ``mirror=`` / ``--mirror``,
``$XSCHED_OPS_DEBIAN_MIRROR``, or the host's apt configuration, both formats; never from the code.

Pure logic: apt configurations are written under ``tmp_path`` and read as if it were ``/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xsched_ops.errors import SandboxError, UsageError, XSchedOpsError
from xsched_ops.sandbox import image
from xsched_ops.sandbox.image import (
    MIRROR_VARIABLE,
    choose_mirror,
    debian_mirror,
    host_apt_sources,
    parse_deb822_sources,
    parse_sources_list,
)

MIRROR_A = "http://mirror-a.example/debian"
MIRROR_B = "https://mirror-b.example/debian/"


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture(autouse=True)
def _no_mirror_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MIRROR_VARIABLE, raising=False)


# -- the one-line format ----------------------------------------------------------------------

def test_one_line_entries_with_comments_options_and_several_entries() -> None:
    text = f"""# deb http://commented.example/debian bookworm main
deb-src {MIRROR_A} bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {MIRROR_A} bookworm main contrib
deb [ arch=amd64,i386 ] {MIRROR_B} bookworm-updates main   # trailing comment
  deb {MIRROR_B} trixie main

deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD Binary-1]/ bookworm contrib main
deb file:/srv/local-repo ./
deb [signed-by=/x.gpg {MIRROR_A} bookworm main
deb {MIRROR_A}
"""
    entries = parse_sources_list(text, "/etc/apt/sources.list")
    cdrom = "cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD Binary-1]/"
    assert [(e.type, e.uri, e.suites, e.components) for e in entries] == [
        ("deb-src", MIRROR_A, ("bookworm",), ("main",)),
        ("deb", MIRROR_A, ("bookworm",), ("main", "contrib")),
        ("deb", MIRROR_B, ("bookworm-updates",), ("main",)),
        ("deb", MIRROR_B, ("trixie",), ("main",)),
        ("deb", cdrom, ("bookworm",), ("contrib", "main")),
        ("deb", "file:/srv/local-repo", ("./",), ()),
        # an unclosed option list and an entry without a suite are no entries
    ]
    assert entries[1].origin == "/etc/apt/sources.list:3"
    assert entries[5].origin == "/etc/apt/sources.list:8"
    chosen = choose_mirror(entries)
    assert chosen is not None and chosen.uri == MIRROR_A and chosen.type == "deb"


def test_cdrom_and_file_entries_are_not_taken_as_the_mirror() -> None:
    text = """deb cdrom:/media/cdrom/ bookworm main
deb file:/srv/local-repo ./
deb http://mirror.example/debian bookworm main
"""
    entries = parse_sources_list(text, "x")
    assert [e.uri for e in entries] == ["cdrom:/media/cdrom/", "file:/srv/local-repo", "http://mirror.example/debian"]
    chosen = choose_mirror(entries)
    assert chosen is not None and chosen.uri == "http://mirror.example/debian"


def test_a_local_file_mirror_of_the_suite_is_usable() -> None:
    entries = parse_sources_list("deb file:///srv/debian bookworm main\n", "x")
    chosen = choose_mirror(entries)
    assert chosen is not None and chosen.uri == "file:///srv/debian"


# -- deb822 ------------------------------------------------------------------------------------

DEB822 = f"""Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: {MIRROR_A}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

types: deb
uris: {MIRROR_B}
  http://mirror-c.example/debian
suites: trixie
components: main
enabled: no

Types: deb
URIs: http://mirror-d.example/debian
 http://mirror-e.example/debian
Suites: sid
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBFxZ
 -----END PGP PUBLIC KEY BLOCK-----
"""


def test_deb822_stanzas_types_continuations_enabled_and_case() -> None:
    entries = parse_deb822_sources(DEB822, "/etc/apt/sources.list.d/debian.sources")
    assert [(e.type, e.uri, e.suites) for e in entries] == [
        ("deb", MIRROR_A, ("bookworm", "bookworm-updates")),
        ("deb", "http://security.example/debian-security", ("bookworm-security",)),
        ("deb-src", "http://security.example/debian-security", ("bookworm-security",)),
        # the trixie stanza is disabled
        ("deb", "http://mirror-d.example/debian", ("sid",)),
        ("deb", "http://mirror-e.example/debian", ("sid",)),
    ]
    assert entries[0].origin == "/etc/apt/sources.list.d/debian.sources:1"
    assert entries[1].origin == "/etc/apt/sources.list.d/debian.sources:8"


# -- choosing and overriding ------------------------------------------------------------------

def test_the_host_configuration_gives_the_mirror_of_the_suite(tmp_path: Path) -> None:
    write(tmp_path, "etc/apt/sources.list", "deb http://security.example/debian-security bookworm-security main\n")
    write(tmp_path, "etc/apt/sources.list.d/debian.sources", DEB822)
    write(tmp_path, "etc/apt/sources.list.d/other.list.disabled", f"deb {MIRROR_B} bookworm main\n")
    entries = host_apt_sources(tmp_path)
    assert entries[0].origin == "/etc/apt/sources.list:1"
    assert debian_mirror(root=tmp_path) == (MIRROR_A, "/etc/apt/sources.list.d/debian.sources:1")


def test_another_debian_release_serves_the_suite_too(tmp_path: Path) -> None:
    write(tmp_path, "etc/apt/sources.list.d/trixie.list",
          f"deb http://ppa.example/ubuntu jammy main\ndeb {MIRROR_B} trixie main\n")
    assert debian_mirror(root=tmp_path) == (MIRROR_B.rstrip("/"), "/etc/apt/sources.list.d/trixie.list:2")


def test_the_option_then_the_variable_override_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "etc/apt/sources.list", f"deb {MIRROR_A} bookworm main\n")
    monkeypatch.setenv(MIRROR_VARIABLE, MIRROR_B)
    assert debian_mirror(root=tmp_path) == (MIRROR_B.rstrip("/"), f"${MIRROR_VARIABLE}")
    assert debian_mirror("http://mirror-c.example/debian", root=tmp_path) == ("http://mirror-c.example/debian",
                                                                              "--mirror")


@pytest.mark.parametrize("bad", ["foo://x/debian", "mirror.example/debian", "http://", "cdrom:/media", "file:"])
def test_a_malformed_override_is_one_line_and_exit_2(bad: str, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        debian_mirror(bad, root=tmp_path)
    assert caught.value.exit_code == 2 and "--mirror" in caught.value.one_line() and bad in caught.value.one_line()
    monkeypatch.setenv(MIRROR_VARIABLE, bad)
    with pytest.raises(UsageError) as caught:
        debian_mirror(root=tmp_path)
    assert MIRROR_VARIABLE in caught.value.one_line()


@pytest.mark.parametrize("config", [
    {},
    {"etc/apt/sources.list": "# only comments\n"},
    {"etc/apt/sources.list": "deb http://archive.example/ubuntu jammy main\ndeb cdrom:/media/ bookworm main\n"},
    {"etc/apt/sources.list.d/x.sources": "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm\n"
                                         "Enabled: no\n"},
    {"etc/apt/sources.list.d/x.sources": "Types: deb-src\nURIs: http://m.example/debian\nSuites: bookworm\n"},
])
def test_a_host_without_a_mirror_says_how_to_give_one(tmp_path: Path, config: dict[str, str]) -> None:
    for relative, text in config.items():
        write(tmp_path, relative, text)
    with pytest.raises(SandboxError) as caught:
        debian_mirror(root=tmp_path)
    line = caught.value.one_line()
    assert "\n" not in line and f"{MIRROR_VARIABLE}=URL" in line and "--mirror URL" in line, line


def test_no_registry_host_is_written_into_the_image_module() -> None:
    source = Path(image.__file__).read_text()
    assert not re.search(r"https?://[a-z0-9.-]+\.(org|net|com|io)\b", source), "a mirror host is named in the code"


def test_the_image_tag_does_not_depend_on_the_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    tag = image.image_tag()
    monkeypatch.setenv(MIRROR_VARIABLE, MIRROR_B)
    assert image.image_tag() == tag


# -- fuzz: never a traceback ------------------------------------------------------------------

_apt_words = st.sampled_from(["deb", "deb-src", "[", "]", "arch=amd64", "signed-by=/k.gpg", "#", "bookworm", "sid",
                              "main", "http://m.example/debian", "cdrom:[x y]/", "file:/srv", "Types:", "URIs:",
                              "Suites:", "Enabled: no", ":", " ", "\t", "\n", "\n\n", "\r\n", "\x00", "é"])
_apt_text = st.one_of(st.text(max_size=300), st.lists(_apt_words, max_size=60).map("".join))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(list_text=_apt_text, deb822_text=_apt_text, override=st.one_of(st.none(), st.text(max_size=40)))
def test_fuzzed_apt_configurations_never_raise_anything_but_one_line(tmp_path: Path, list_text: str,
                                                                     deb822_text: str, override: str | None) -> None:
    for parse, text in ((parse_sources_list, list_text), (parse_deb822_sources, deb822_text)):
        for entry in parse(text, "f"):
            assert entry.type in ("deb", "deb-src") and entry.uri and " " not in entry.uri
    write(tmp_path, "etc/apt/sources.list", list_text.replace("\x00", ""))
    write(tmp_path, "etc/apt/sources.list.d/f.sources", deb822_text.replace("\x00", ""))
    try:
        url, origin = debian_mirror(override, root=tmp_path)
    except XSchedOpsError as err:
        assert "\n" not in err.one_line()
    else:
        assert url and origin
