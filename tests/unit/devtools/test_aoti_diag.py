"""tools/gpucall/aoti_diag.py: the outcome names, the mapped-library lines, each variant's environment and command,
and bad arguments. The whole diagnosis (build a package, load it ten ways) is for the GPU machine; it was run once
by hand on this CPU host (every variant loads there), not in CI: it compiles a package (about 40 s)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.gpucall import aoti_diag as d


def test_outcomes_name_the_signal_or_the_exit_status() -> None:
    assert d.how(0, False) == "ok"
    assert d.how(-11, False) == "SIGSEGV (signal 11)"
    assert d.how(3, False) == "exit status 3"
    assert d.how(None, True) == "timeout"


def test_mapped_libraries_are_read_per_stage() -> None:
    out = "noise\nmaps-start ['/lib/libgcc_s.so.1']\nmaps-torch ['/lib/libgcc_s.so.1', '/lib/libstdc++.so.6.0.33']\n"
    assert d.parse_maps(out) == {
        "start": ["/lib/libgcc_s.so.1"],
        "torch": ["/lib/libgcc_s.so.1", "/lib/libstdc++.so.6.0.33"],
    }


def test_each_variant_differs_from_plain_only_in_what_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LD_PRELOAD", "/somewhere/else.so")
    monkeypatch.setenv("PYTHONFAULTHANDLER", "1")
    pre = Path("/tmp/bt.so")
    plain = d.variant_env("plain", pre)
    assert "LD_PRELOAD" not in plain and "PYTHONFAULTHANDLER" not in plain
    assert plain["PYTHONPATH"].split(":")[0] == str(d.ROOT)
    assert d.variant_env("faulthandler", pre)["PYTHONFAULTHANDLER"] == "1"
    assert d.variant_env("preload", pre)["LD_PRELOAD"] == str(pre)
    hold = d.variant_env("hold_env", pre)
    assert hold["LD_PRELOAD"] == str(pre) and hold["PYTHONFAULTHANDLER"] == "1"
    assert "LD_PRELOAD" not in d.variant_env("preload", None)
    lib = d.compiler_libstdcxx()  # the host's g++ (make setup installs build-essential)
    assert lib is not None and lib.name.startswith("libstdc++.so.6") and lib.exists()
    assert d.variant_env("compiler_stdcxx", pre)["LD_PRELOAD"] == str(lib)


def test_commands_load_the_package_or_run_the_hold_child() -> None:
    pkg = Path("/tmp/pk/cnn_b1.pt2")
    code = d.variant_argv("plain", pkg, "cuda")[2]
    assert "aoti_load_package(str(Path('/tmp/pk/cnn_b1.pt2')))" in code and "@" not in code and "aot.load" not in code
    assert "aot.load(Path('/tmp/pk/cnn_b1.pt2'), 'cuda')" in d.variant_argv("aot_load", pkg, "cuda")[2]
    compile(code, "<snippet>", "exec")
    assert d.RUNNER_IMPORTS in d.variant_argv("runner_imports", pkg, "cpu")[2]
    hold = d.variant_argv("hold_child", pkg, "cuda")
    assert hold[1:4] == ["-m", "workloads.engines.aot_hold", "hold"]
    assert json.loads(hold[4])["packages"] == [{"path": str(pkg), "batch": 1}]


def test_bad_arguments_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(d.DiagError, match="field variant = 'gdb'"):
        d.variant_env("gdb", None)
    with pytest.raises(d.DiagError, match="field device = 'tpu'"):
        d.main(["--out", str(tmp_path), "--device", "tpu"])
    with pytest.raises(d.DiagError, match=r"field timeout_s = 0\.0"):
        d.main(["--out", str(tmp_path), "--timeout-s", "0"])
    with pytest.raises(d.DiagError, match="field variant = 'gdb'"):
        d.main(["--out", str(tmp_path), "--variants", "plain,gdb"])
    with pytest.raises(d.DiagError, match="field parallel = 0"):
        d.main(["--out", str(tmp_path), "--parallel", "0"])
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_facet_id_bindings_name_each_referencing_and_defining_library(tmp_path: Path) -> None:
    (tmp_path / "ld.101").write_text(
        "     101:\tbinding file /tmp/x/wrapper.so [0] to /usr/lib/libstdc++.so.6 [0]: normal symbol "
        "`_ZNSt7collateIcE2idE' [GLIBCXX_3.4]\n"
        "     101:\tbinding file /tmp/x/wrapper.so [0] to /site/torch/lib/libtorch_cpu.so [0]: normal symbol "
        "`_ZNSt5ctypeIcE2idE' [GLIBCXX_3.4]\n"
        "     101:\tbinding file /usr/lib/libfoo.so [0] to /usr/lib/libc.so.6 [0]: normal symbol "
        "`malloc' [GLIBC_2.2.5]\n"
    )
    assert d.facet_bindings([tmp_path / "ld.101"]) == {
        "_ZNSt5ctypeIcE2idE": ["/tmp/x/wrapper.so -> /site/torch/lib/libtorch_cpu.so"],
        "_ZNSt7collateIcE2idE": ["/tmp/x/wrapper.so -> /usr/lib/libstdc++.so.6"],
    }


def test_same_process_builds_first_and_ld_bindings_sets_ld_debug() -> None:
    code = d.variant_argv("same_process", Path("/tmp/pk/cnn_b1.pt2"), "cuda")[2]
    assert "build({" in code and "aoti_load_package(str(Path('/tmp/pk/same/cnn_b1.pt2')))" in code
    compile(code, "<snippet>", "exec")
    assert d.variant_env("ld_bindings", None)["LD_DEBUG"] == "bindings"


def test_the_workaround_is_named_only_when_the_plain_load_crashed_and_the_preloaded_one_ran(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.33"
    report = {
        "package": {"compiler libstdc++": lib},
        "variants": [{"variant": "plain", "how": "SIGSEGV (signal 11)"}, {"variant": "compiler_stdcxx", "how": "ok"}],
    }
    assert d.workaround(report) == lib
    report["variants"][1]["how"] = "SIGSEGV (signal 11)"
    assert d.workaround(report) == ""
    report["variants"] = [{"variant": "plain", "how": "ok"}, {"variant": "compiler_stdcxx", "how": "ok"}]
    assert d.workaround(report) == ""  # nothing to fix
    (tmp_path / "r.json").write_text(json.dumps({"variants": []}))
    assert d.main(["--fix-from", str(tmp_path / "r.json")]) == 0 and capsys.readouterr().out == "\n"
    with pytest.raises(d.DiagError, match="field out"):
        d.main([])
