"""glibc's splitting of LD_PRELOAD and /etc/ld.so.preload, checked against the real loader."""

from __future__ import annotations

import os
import subprocess

from xsched_ops.environment.loader_vars import split_ld_so_preload, split_path_list, split_preload


def test_ld_preload_splits_on_spaces_and_colons_only():
    assert split_preload("a.so b.so:c.so  ::d.so") == ["a.so", "b.so", "c.so", "d.so"]
    assert split_preload("a.so\tb.so") == ["a.so\tb.so"]  # a tab is part of the name
    assert split_preload("") == [] and split_preload(" : ") == []


def test_ld_so_preload_file_splits_on_whitespace_and_colons():
    assert split_ld_so_preload("a.so\tb.so\nc.so:d.so  e.so\n") == ["a.so", "b.so", "c.so", "d.so", "e.so"]


def test_library_path_keeps_empty_entries():
    assert split_path_list("/a::/b;/c") == ["/a", "", "/b", "/c"] and split_path_list("") == []


def test_the_real_loader_reads_a_tab_as_part_of_one_preload_name():
    value = "libm.so.6\tlibdl.so.2"
    done = subprocess.run(["/bin/true"], env={**os.environ, "LD_PRELOAD": value}, capture_output=True, text=True)
    # One name, not found: glibc names exactly the entries split_preload gives.
    [entry] = split_preload(value)
    assert f"object '{entry}' from LD_PRELOAD cannot be preloaded" in done.stderr, done.stderr
    done = subprocess.run(["/bin/true"], env={**os.environ, "LD_PRELOAD": "libm.so.6 :libdl.so.2"},
                          capture_output=True, text=True)
    assert done.stderr == ""  # two names, both found
