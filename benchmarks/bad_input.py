"""Hostile scenario files: time and peak memory of ``salesops validate`` until its error.

Issue 18 target: an alias bomb, ``extends: /dev/zero`` and a 1 GB file given as a scenario each end
in a clear one-line error in < 2 s and < 200 MB. Each case runs as its own ``salesops validate``
process, measured by ``/usr/bin/time -v`` (wall clock, maximum resident set size); the baseline, in
the same run, is ``salesops validate`` on a small valid scenario (what the CLI costs to start and
import), and each case is printed as a ratio to it too.

Cases:

* ``alias_bomb``: 9 levels of 9 aliases (9**9 = 387M leaves once expanded) in ``description``; on
  the 2026-11-30 main it ran 55 s to ~3 GB and a MemoryError.
* ``extends_dev_zero``: ``extends: /dev/zero`` (with ``--allow-dir /dev`` so the path rule does not
  stop it first: the reader itself must refuse a device).
* ``one_gb_file``: a 1 GiB sparse file named ``*.yaml``.
* ``dev_zero_itself``: ``salesops validate /dev/zero`` is refused by the CLI (not a .yaml file);
  not measured.

Usage::

    .venv/bin/python benchmarks/bad_input.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

SALESOPS = str(Path(sys.executable).with_name("salesops"))
TARGET_SECONDS = 2.0
TARGET_MB = 200.0


def alias_bomb() -> str:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    return "\n".join(lines) + "\nname: bomb\ndescription: *i\n"


def measure(args: list[str]) -> dict[str, object]:
    """Run ``salesops validate ARGS`` under /usr/bin/time -v; wall seconds, peak RSS, exit code, message."""
    res = subprocess.run(
        ["/usr/bin/time", "-v", SALESOPS, "validate", *args], capture_output=True, text=True, timeout=600
    )
    stats = res.stderr
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", stats)
    assert wall is not None, stats
    seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stats).group(1))
    message = [ln for ln in stats.splitlines() if ln.startswith(("INVALID", "Error"))]
    return {
        "seconds": round(seconds, 2),
        "peak_mb": round(rss_kb / 1024, 1),
        "exit_code": res.returncode,
        "message": message[0][:160] if message else "",
        "traceback": "Traceback" in stats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    opts = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="salesops-bad-input-") as tmp:
        d = Path(tmp)
        (d / "good.yaml").write_text("name: good\n")
        (d / "bomb.yaml").write_text(alias_bomb())
        (d / "zero.yaml").write_text("name: zero\nextends: /dev/zero\n")
        with open(d / "huge.yaml", "wb") as fh:  # sparse: no disk used
            fh.truncate(1 << 30)
        cases = {
            "baseline_valid_scenario": [str(d / "good.yaml")],
            "alias_bomb": [str(d / "bomb.yaml")],
            "extends_dev_zero": [str(d / "zero.yaml"), "--allow-dir", "/dev"],
            "one_gb_file": [str(d / "huge.yaml")],
        }
        results = {name: measure(args) for name, args in cases.items()}
    base = results["baseline_valid_scenario"]
    ok = True
    print(f"{'case':<26}{'seconds':>9}{'x base':>8}{'peak MB':>9}{'x base':>8}  exit  message")
    for name, r in results.items():
        r["seconds_ratio"] = round(r["seconds"] / base["seconds"], 2)
        r["peak_mb_ratio"] = round(r["peak_mb"] / base["peak_mb"], 2)
        if name != "baseline_valid_scenario":
            r["meets_target"] = (
                r["seconds"] < TARGET_SECONDS
                and r["peak_mb"] < TARGET_MB
                and r["exit_code"] == 1
                and not r["traceback"]
                and bool(r["message"])
            )
            ok &= bool(r["meets_target"])
        print(
            f"{name:<26}{r['seconds']:>9.2f}{r['seconds_ratio']:>8.2f}{r['peak_mb']:>9.1f}{r['peak_mb_ratio']:>8.2f}"
            f"  {r['exit_code']:>4}  {r['message']}"
        )
    print(f"target: error in < {TARGET_SECONDS} s and < {TARGET_MB:.0f} MB, one line, no traceback: "
          f"{'met' if ok else 'NOT met'}")
    print(f"load average after: {os.getloadavg()}")
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
