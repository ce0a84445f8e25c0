"""What every benchmark records beside its figures: the machine, the command, the date, and
where the JSON goes (written atomically, so a killed run leaves the old results whole)."""
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys

import numpy as np

import snnp

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def command():
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def git_state():
    """Commit and whether the tree had changes, so a figure can be traced to its source."""
    try:
        root = os.path.dirname(HERE)
        rev = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return {"commit": rev or None, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def cpu_model():
    """The processor's model name (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine(**extra):
    """The machine and software a benchmark ran on; ``extra`` adds entries (peer versions)."""
    from snnp.backends import gpu
    with open(os.devnull, "w") as devnull:
        cfg = snnp.show_config(file=devnull)
    info = {"uname": platform.uname()._asdict(), "processor": cpu_model(),
            "cpu_count": os.cpu_count(),
            "cpus_available": (len(os.sched_getaffinity(0))
                               if hasattr(os, "sched_getaffinity") else None),
            "python": platform.python_version(), "numpy": np.__version__,
            "snnp": snnp.__version__, "snnp_config": cfg, "snnp_git": git_state(),
            "gpu": gpu.available()[1],
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    info.update(extra)
    return info


def output_path(folder, name):
    """``folder``/``name``, the folder made and checked writable before any long work starts
    (SystemExit naming the path otherwise)."""
    path = os.path.join(folder, name)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise SystemExit(f"cannot write {path}: {exc}") from None
    if not os.access(folder, os.W_OK):
        raise SystemExit(f"cannot write {path}")
    return path


def save(name, doc):
    """Write ``doc`` as benchmarks/results/<name> atomically; returns the path."""
    from snnp.io.atomic import atomic_write
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name)
    with atomic_write(path) as fh:
        json.dump(doc, fh, indent=1)
    return path


def record(path, started, **fields):
    """Write the JSON record of a run to ``path`` atomically: the command, date, machine and
    wall time since ``started`` (``time.time()``), then ``fields``; print where it went."""
    import time
    from snnp.io.atomic import atomic_write
    doc = {"command": command(), "date": now(), "machine": machine(),
           "wall_s": time.time() - started, **fields}
    with atomic_write(path) as fh:
        json.dump(doc, fh, indent=1)
    print(f"wrote {path} ({doc['wall_s']:.0f} s)")
    return doc
