"""Small, pure helpers for the scripts under ``benchmarks/`` (comparisons you can trust).

- ``abba_order``: the order of alternating blocks of two measurements (A B B A A B ...), which cancels
  a linear drift of the machine's speed over the run
- ``pair_ratios`` / ``summarize``: per-pair ratios of two measurements and their median/min/max
- ``tree_snapshot`` / ``tree_changes``: every file under a directory (size, mtime, sha256), and what
  differs between two snapshots: proof that a warm run touched no artifact
- ``rss_bytes`` / ``peak_rss_bytes`` / ``reset_peak_rss``: resident memory of this process (Linux)
- ``format_table``: a plain-text table
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from ..export.cache import file_digest


def abba_order(pairs: int, a="a", b="b") -> list:
    """``[a, b, b, a, a, b, ...]``: ``pairs`` pairs, each pair's order flipped after the previous one."""
    order = []
    for i in range(pairs):
        order += [a, b] if i % 2 == 0 else [b, a]
    return order


def pair_ratios(a_values, b_values) -> list[float]:
    """``a[i] / b[i]`` for the i-th pair of blocks."""
    a_values, b_values = list(a_values), list(b_values)
    if len(a_values) != len(b_values) or not a_values:
        raise ValueError(f"need as many a as b values, at least one (got {len(a_values)} and {len(b_values)})")
    return [a / b for a, b in zip(a_values, b_values)]


def summarize(values) -> dict:
    """median, min and max of a list of numbers (e.g. per-pair ratios)."""
    values = list(values)
    if not values:
        raise ValueError("no values")
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}




def tree_snapshot(root) -> dict[str, dict]:
    """Relative path -> ``{"size", "mtime_ns", "sha256"}`` of every regular file under ``root``."""
    root = Path(root)
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            out[path.relative_to(root).as_posix()] = file_record(path)
    return out


def file_record(path) -> dict:
    """``{"size", "mtime_ns", "sha256"}`` of one file."""
    st = Path(path).stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": file_digest(path)}


def tree_changes(before: dict, after: dict) -> list[str]:
    """What differs between two ``tree_snapshot`` results, one line per file (empty: untouched)."""
    changes = []
    for path in sorted(set(before) | set(after)):
        if path not in after:
            changes.append(f"{path}: removed")
        elif path not in before:
            changes.append(f"{path}: added")
        else:
            what = [k for k in ("sha256", "size", "mtime_ns") if before[path][k] != after[path][k]]
            if what:
                changes.append(f"{path}: {', '.join(what)} changed")
    return changes


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_bytes() -> int | None:
    """Resident set size now (None where /proc is missing)."""
    kb = _status_kb("VmRSS")
    return None if kb is None else kb * 1024


def peak_rss_bytes() -> int | None:
    """Peak resident set size since the process started or since ``reset_peak_rss``."""
    kb = _status_kb("VmHWM")
    return None if kb is None else kb * 1024


def reset_peak_rss() -> bool:
    """Reset the peak RSS to the current RSS (Linux >= 4.0, /proc/self/clear_refs); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def format_table(headers, rows) -> str:
    """Columns padded to their widest cell; numbers are given already formatted."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine_info() -> dict:
    """CPU model, usable cores, Python and library versions: printed beside every measurement."""
    import platform

    model = None
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {"cpu": model or platform.processor() or platform.machine(), "cores": cores,
            "python": platform.python_version(), "platform": platform.platform()}
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("numpy", "onnxruntime", "onnxruntime-gpu", "torch", "pytest", "pytest-benchmark"):
        try:
            info[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return info


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (other users' work on a shared machine shows here)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def git_revision(root) -> dict | None:
    """HEAD commit of the checkout at ``root`` and the files that differ from it (what was measured)."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"head": head, "modified": [line[3:] for line in dirty]}


def finish(result: dict, json_path, load_before, root) -> dict:
    """Stamp a benchmark result with machine, source revision, load and date; print the load; write JSON."""
    import json
    import time

    result.update({"machine": machine_info(), "source": git_revision(root),
                   "load_average": {"before": load_before, "after": load_average()},
                   "date": time.strftime("%Y-%m-%d")})
    print(f"load average (1/5/15 min) before {load_before}, after {result['load_average']['after']}")
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2))
        print(f"\nwrote {json_path}")
    return result
