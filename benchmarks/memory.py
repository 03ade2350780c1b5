"""Peak resident memory (RSS) of the web and worker processes over a long end-to-end run, and
whether it keeps growing (a leak shows as a last sample well above the first).

gunicorn's master and each of its workers, and each `alliance worker` process, are sampled
every 0.25 s through /proc while the sessions of benchmarks/end_to_end.py flow through them.

    .venv/bin/python benchmarks/memory.py [--sessions 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import end_to_end  # noqa: E402
from harness import run_facts, save_result  # noqa: E402

LIMIT_MB = 150


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)
    run = end_to_end.run(args.sessions, workers=2, consumers=4, web_workers=None, timeout=args.timeout)
    processes = run["rss_per_process_mb"]
    result = {
        **run_facts(" ".join(["benchmarks/memory.py", *(argv or sys.argv[1:])])),
        "sessions": args.sessions, "sessions_per_s": run["sessions_per_s"],
        "peak_rss_mb": run["peak_rss_mb"], "limit_mb": LIMIT_MB,
        "within_limit": all(peak < LIMIT_MB for peak in run["peak_rss_mb"].values()),
        "growth_mb": {role: round(max((p["last"] - p["first"] for p in found), default=0.0), 1)
                      for role, found in processes.items()},
        "per_process_mb": processes, "logs": run["logs"],
    }
    print(json.dumps(result, indent=2))
    save_result(result, Path(run["logs"]) / "memory")
    return result


if __name__ == "__main__":
    main()
