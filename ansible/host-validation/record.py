"""Turn what run.sh wrote on a validated host into a lab result with provenance, and render its report.

    python ansible/host-validation/record.py build DIR --host-class h200 --commit SHA [--dirty]
    python ansible/host-validation/record.py render

`build` copies the run's files to reports/results/host-validation/<host_class>/ and writes the result
reports/results/host-validation/gpu_hosts.<host_class>.json (the lab's result format, ailab/results/store.py);
`render` writes reports/host-validation.md from every such result. Nothing here is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ailab.report.render import table_md  # noqa: E402 - after the repo is on the path

RESULTS = REPO / "reports" / "results" / "host-validation"
REPORT = REPO / "reports" / "host-validation.md"
FILES = ("host.json", "verify-all.log", "run1.log", "run2.log", "testinfra.log", "testinfra.xml")
RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
    r"failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.M,
)
MISSING = re.compile(r"^\s+- (?P<component>\w+): (?P<item>.+?) \(check: .*\) -> (?P<how>.+)$", re.M)


def table(name: str, columns: list[tuple[str, str]], rows: list[list], caption: str) -> dict:
    return {"name": name, "columns": [{"name": n, "unit": u} for n, u in columns], "rows": rows, "caption": caption}


def recap(log: str) -> tuple[dict[str, int], int]:
    """The last PLAY RECAP line of a run and the run's exit code (run.sh appends `runN rc=X`)."""
    m = list(RECAP.finditer(log))
    rc = re.findall(r"rc=(\d+)\s*$", log.strip())
    counts = {k: int(v) for k, v in m[-1].groupdict().items() if k != "host"} if m else {}
    return counts, int(rc[-1]) if rc else -1


def testinfra_rows(xml: Path) -> list[list]:
    rows = []
    for case in ET.parse(xml).getroot().iter("testcase"):
        outcome, reason = "passed", ""
        for child in case:
            if child.tag in ("skipped", "failure", "error"):
                outcome = {"skipped": "skipped", "failure": "failed", "error": "error"}[child.tag]
                reason = (child.get("message") or "").removeprefix("Skipped: ")
        rows.append([case.get("name"), outcome, reason])
    return rows


def build(src: Path, host_class: str, commit: str, dirty: bool, notes: list[str]) -> Path:
    dest = RESULTS / host_class
    dest.mkdir(parents=True, exist_ok=True)
    for name in (*FILES, "lab_validate.json", "gpu_topology.json"):
        if (src / name).exists():
            shutil.copyfile(src / name, dest / name)
    host = json.loads((src / "host.json").read_text())
    validate = json.loads((src / "lab_validate.json").read_text())
    topo = json.loads((src / "gpu_topology.json").read_text())
    runs = {}
    for name in ("run1", "run2"):
        runs[name] = recap((src / f"{name}.log").read_text())
    verify_log = (src / "verify-all.log").read_text()
    verify_counts, verify_rc = recap(verify_log)
    tests = testinfra_rows(src / "testinfra.xml")

    recap_rows = [
        [n, c.get("ok"), c.get("changed"), c.get("failed"), c.get("skipped"), rc] for n, (c, rc) in runs.items()
    ]
    recap_rows.append(
        [
            "verify-all",
            verify_counts.get("ok"),
            verify_counts.get("changed"),
            verify_counts.get("failed"),
            verify_counts.get("skipped"),
            verify_rc,
        ]
    )
    second_changed = runs["run2"][0].get("changed")
    failed_tests = [r[0] for r in tests if r[1] in ("failed", "error")]
    checks = {
        "run 1 converged (rc 0, failed 0)": runs["run1"][1] == 0 and runs["run1"][0].get("failed") == 0,
        "run 2 changed nothing (changed=0)": runs["run2"][1] == 0 and second_changed == 0,
        "lab_validate ok": validate.get("ok") is True,
        "testinfra: no failed check": not failed_tests and host.get("testinfra_rc") == 0,
        "verify-all stopped in the preflight with the missing list (rc 2, changed 0)": verify_rc == 2
        and verify_counts.get("changed") == 0,
    }
    record = {
        "schema": 1,
        "id": "hostval.gpu_hosts",
        "summary": "ansible/gpu_hosts.yml run for real on a pre-provisioned, offline GPU host (connection local), "
        "twice, then pytest --hosts=local:// tests/infra",
        "runner": "ansible/host-validation/run.sh",
        "device": "cuda" if host.get("gpus") else "cpu",
        "host_class": host_class,
        "needs": ["gpu"],
        "params": {
            "inventory": "inventories/preprovisioned",
            "lab_components": validate.get("components", []),
            "airgap": True,
            "verify_all_components": True,
        },
        "provenance": {
            "git": {"commit": commit, "dirty": dirty},
            **{k: host.get(k) for k in ("host", "user", "os", "cpu", "cpu_count", "gpus", "driver", "python")},
            "packages": host.get("packages", {}),
            "nvcc": host.get("nvcc"),
            "init": host.get("init"),
            "started_utc": host.get("started_utc"),
            "ended_utc": host.get("ended_utc"),
        },
        "quick": False,
        "tables": [
            table(
                "acceptance",
                [("criterion", ""), ("met", "")],
                [[k, "MET" if v else "NOT MET"] for k, v in checks.items()],
                "What this run had to show; each is read from the files below.",
            ),
            table(
                "play_recaps",
                [
                    ("run", ""),
                    ("ok", "tasks"),
                    ("changed", "tasks"),
                    ("failed", "tasks"),
                    ("skipped", "tasks"),
                    ("exit code", ""),
                ],
                recap_rows,
                "PLAY RECAP of each ansible-playbook run; verify-all asks for every component with airgap: true.",
            ),
            table(
                "missing_for_the_full_lab",
                [("component", ""), ("item", ""), ("how to provide it", "")],
                [
                    list(t)
                    for t in dict.fromkeys((m["component"], m["item"], m["how"]) for m in MISSING.finditer(verify_log))
                ],
                "What the preflight listed when every component was asked for on this host (nothing was changed).",
            ),
            table(
                "lab_validate",
                [("check", ""), ("status", ""), ("detail", "")],
                [[c["name"], c["status"], c["detail"]] for c in validate["checks"]],
                f"/var/lib/ailab/lab_validate.json: ok = {validate.get('ok')}.",
            ),
            table(
                "not_manageable",
                [("service", ""), ("component", ""), ("reason", ""), ("by hand", "")],
                [
                    [u["service"], u["component"], u["reason"], u.get("how", "")]
                    for u in validate.get("not_manageable", [])
                ],
                "Services the playbook could not manage on this host, and why.",
            ),
            table(
                "testinfra",
                [("test", ""), ("outcome", ""), ("reason", "")],
                tests,
                "pytest --hosts=local:// tests/infra on the host; every skip says why (host profile).",
            ),
            table(
                "gpus",
                [("pci_bus_id", ""), ("numa_node", ""), ("link", "GT/s x lanes"), ("max link", "GT/s x lanes")],
                [
                    [
                        g["pci_bus_id"],
                        g["numa_node"],
                        f"{g['link_speed']} x{g['link_width']}",
                        f"{g['max_link_speed']} x{g['max_link_width']}",
                    ]
                    for g in topo.get("gpus", [])
                ],
                "GPUs on the PCI bus as the gpu_topology probe read them from sysfs.",
            ),
            table(
                "numa_nodes",
                [("node", ""), ("cpus", "list"), ("memory", "MiB"), ("distances", "relative, 10=local")],
                [
                    [n["id"], n["cpulist"], n["memory_mib"], " ".join(map(str, n["distances"]))]
                    for n in topo["numa_nodes"]
                ],
                "NUMA nodes from sysfs (memory as the VM reported it then; it grows as it is used).",
            ),
        ],
        "series": [],
        "notes": [
            "nvidia-smi topo -m as the topology probe recorded it:\n"
            + re.sub(r"\x1b\[[0-9;]*m", "", topo.get("nvidia_smi_topo") or "(none)"),
            "Raw files (play logs, testinfra log and JUnit XML, lab_validate and topology reports): "
            f"reports/results/host-validation/{host_class}/.",
            *notes,
        ],
        "artifacts": {
            name: f"reports/results/host-validation/{host_class}/{name}"
            for name in (*FILES, "lab_validate.json", "gpu_topology.json")
            if (dest / name).exists()
        },
        "duration_s": None,
        "status": "ok" if all(checks.values()) else "failed",
        "reason": "" if all(checks.values()) else "not met: " + "; ".join(k for k, v in checks.items() if not v),
    }
    out = RESULTS / f"gpu_hosts.{host_class}.json"
    out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def render() -> Path:
    parts = [
        "<!-- generated by `python ansible/host-validation/record.py render` from reports/results/host-validation/; "
        "do not edit by hand -->",
        "# gpu_hosts.yml on real GPU hosts",
        "",
        "Each section is one run of `ansible/host-validation/run.sh` on a lent machine (docs/ansible.md says how).",
    ]
    for path in sorted(RESULTS.glob("gpu_hosts.*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        p = r["provenance"]
        gpus = ", ".join(f"{g['name']} ({g['memory_mib']} MiB)" for g in p.get("gpus", [])) or "no GPU"
        dirty = " (dirty)" if p["git"].get("dirty") else ""
        parts += [
            "",
            f"## {r['host_class']}: {r['status']}" + (f" — {r['reason']}" if r["reason"] else ""),
            "",
            r["summary"] + ".",
            "",
            f"Provenance: commit `{p['git']['commit'][:10]}`{dirty}, host `{p['host']}` ({p['os']}, "
            f"init `{p['init']}`), "
            f"CPU {p['cpu']} x{p['cpu_count']}, {gpus}, driver {p['driver'] or '—'}, nvcc {p.get('nvcc') or '—'}, "
            f"Python {p['python']}, ansible-core {p['packages'].get('ansible-core')}, pytest-testinfra "
            f"{p['packages'].get('pytest-testinfra')}; {p['started_utc']} → {p['ended_utc']}. "
            f"Result: `{path.relative_to(REPO)}`.",
        ]
        for t in r["tables"]:
            parts += ["", f"### {t['name'].replace('_', ' ')}", "", table_md(t)]
        for n in r["notes"]:
            parts += ["", "```" if "\n" in n else "", n, "```" if "\n" in n else ""]
    REPORT.write_text("\n".join(parts).rstrip() + "\n", encoding="utf-8")
    return REPORT


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("src", type=Path)
    b.add_argument("--host-class", required=True)
    b.add_argument("--commit", required=True)
    b.add_argument("--dirty", action="store_true")
    b.add_argument("--note", action="append", default=[], help="a note to keep with the result (repeatable)")
    sub.add_parser("render")
    a = p.parse_args()
    print(build(a.src, a.host_class, a.commit, a.dirty, a.note) if a.cmd == "build" else render())


if __name__ == "__main__":
    main()
