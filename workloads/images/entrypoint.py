"""Entry point of the inference image: ONNX inference, version info, and the d01 resource-limit probes.

Writes only to TMPDIR, AILAB_LOG_DIR and AILAB_OUTPUT_DIR so the image runs with a read-only root
filesystem; each is checked first and a read-only or missing one fails with exit code 3 and the mount
that fixes it. Uses only the standard library, numpy and onnxruntime (torch only for `info`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

EXIT_NOT_WRITABLE = 3  # a directory the workload must write to is read-only or missing
EXIT_LIMIT_HIT = 4  # stress-pids: fork() was refused (the pids limit worked)

DIRS = {  # environment variable -> default inside the image
    "TMPDIR": "/tmp",
    "AILAB_LOG_DIR": "/var/log/ailab",
    "AILAB_OUTPUT_DIR": "/out",
}
MOUNT_HINT = {
    "TMPDIR": "--tmpfs /tmp",
    "AILAB_LOG_DIR": "-v <logs>:/var/log/ailab",
    "AILAB_OUTPUT_DIR": "-v <out>:/out",
}


def writable_dir(var: str) -> Path:
    """The directory named by env `var`, checked by really creating a file in it; exits 3 with the fix if not."""
    path = Path(os.environ.get(var, DIRS[var]))
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as exc:
        print(
            f"error: {var} {path}: not writable ({exc.strerror}); the workload writes there — with a read-only "
            f"root filesystem mount a volume or tmpfs on it, e.g. podman run --read-only {MOUNT_HINT[var]} ...",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_NOT_WRITABLE) from None
    return path


def log_line(log_file: Path, message: str) -> None:
    with log_file.open("a") as f:
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")


def infer(args: argparse.Namespace) -> int:
    """Run the ONNX model on the .npy input; write logits (.npy), a summary (.json) and a log line."""
    tmp, logs, out = (writable_dir(v) for v in ("TMPDIR", "AILAB_LOG_DIR", "AILAB_OUTPUT_DIR"))
    import numpy as np
    import onnxruntime as ort

    log_file = logs / "infer.log"
    x = np.load(args.input).astype(np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    # the optimised graph goes to TMPDIR: the temp-file path a read-only root must still provide
    opts.optimized_model_filepath = str(tmp / "optimized.onnx")
    t0 = time.perf_counter()
    sess = ort.InferenceSession(str(args.model), opts, providers=["CPUExecutionProvider"])
    (logits,) = sess.run(["logits"], {"input": x})
    ms = (time.perf_counter() - t0) * 1e3
    np.save(out / f"{args.name}.npy", logits)
    summary = {
        "model": str(args.model),
        "batch": int(x.shape[0]),
        "argmax": logits.argmax(axis=1).tolist(),
        "logits_sum": float(logits.sum()),
        "load_and_run_ms": round(ms, 3),
        "onnxruntime": ort.__version__,
        "output": str(out / f"{args.name}.npy"),
        "log": str(log_file),
    }
    (out / f"{args.name}.json").write_text(json.dumps(summary, indent=1))
    log_line(log_file, f"infer model={args.model} batch={x.shape[0]} ms={ms:.3f} argmax={summary['argmax']}")
    print(json.dumps(summary))
    return 0


def info(_: argparse.Namespace) -> int:
    """Print library versions and whether CUDA is visible to torch and onnxruntime, as JSON."""
    result: dict[str, object] = {"python": sys.version.split()[0], "uid": os.getuid()}
    try:
        import onnxruntime as ort

        result["onnxruntime"] = ort.__version__
        result["ort_providers"] = ort.get_available_providers()
    except ImportError:
        result["onnxruntime"] = None
    try:
        import torch

        result["torch"] = torch.__version__
        result["torch_cuda_available"] = torch.cuda.is_available()
        result["torch_cuda_devices"] = torch.cuda.device_count()
    except ImportError:
        result["torch"] = None
    print(json.dumps(result))
    return 0


def cgroup_limit(v2_file: str, v1_file: str) -> str:
    """The limit the container's cgroup shows (cgroup v2 file, else v1), as text; 'unknown' when unreadable."""
    for path in (Path("/sys/fs/cgroup") / v2_file, Path("/sys/fs/cgroup") / v1_file):
        try:
            return path.read_text().strip()
        except OSError:
            continue
    return "unknown"


def stress_memory(args: argparse.Namespace) -> int:
    """Touch memory in steps of --step MiB up to --mib, printing progress; the memory limit should kill it."""
    print(f"cgroup memory limit: {cgroup_limit('memory.max', 'memory/memory.limit_in_bytes')}", flush=True)
    held = []
    for mib in range(args.step, args.mib + 1, args.step):
        held.append(bytearray(args.step << 20))  # bytearray zero-fills: the pages are really touched
        print(f"allocated {mib} MiB", flush=True)
    print(f"done: {args.mib} MiB allocated without being killed", flush=True)
    return 0


def stress_pids(args: argparse.Namespace) -> int:
    """Fork sleeping children until fork() fails or --max is reached; exits 4 when the limit refused a fork."""
    print(f"cgroup pids limit: {cgroup_limit('pids.max', 'pids/pids.max')}", flush=True)
    children = []
    try:
        while len(children) < args.max:
            pid = os.fork()
            if pid == 0:
                time.sleep(args.hold_s)
                os._exit(0)
            children.append(pid)
    except OSError as exc:
        print(f"fork refused after {len(children)} children: [Errno {exc.errno}] {exc.strerror}", flush=True)
        return EXIT_LIMIT_HIT
    finally:
        for pid in children:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    print(f"done: {len(children)} children forked without hitting a limit", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ailab-inference", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("infer", help="ONNX inference of a .npy batch")
    s.add_argument("--model", type=Path, required=True, help="ONNX model (input 'input', output 'logits')")
    s.add_argument("--input", type=Path, required=True, help=".npy float32 batch, e.g. [B,1,28,28]")
    s.add_argument("--name", default="logits", help="output file stem in AILAB_OUTPUT_DIR")
    s.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    s.set_defaults(func=infer)
    sub.add_parser("info", help="versions and CUDA visibility as JSON").set_defaults(func=info)
    s = sub.add_parser("stress-memory", help="allocate memory until killed (d01.e5)")
    s.add_argument("--mib", type=int, default=2048, help="MiB to allocate in total")
    s.add_argument("--step", type=int, default=32, help="MiB per allocation")
    s.set_defaults(func=stress_memory)
    s = sub.add_parser("stress-pids", help="fork until the pids limit refuses (d01.e5)")
    s.add_argument("--max", type=int, default=1000, help="children to fork at most")
    s.add_argument("--hold-s", type=float, default=20.0, help="seconds each child sleeps")
    s.set_defaults(func=stress_pids)
    args = p.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
