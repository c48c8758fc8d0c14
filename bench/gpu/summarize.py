"""Tables for bench/gpu/README.md from the committed H100 results (bench/gpu/h100-call*/).

Each call folder holds the device call's results.tar.gz (xsched-ops results folders with their
result.json) and the bare loops run beside the standalone runs. Prints Markdown.
"""

from __future__ import annotations

import json
import sys
import tarfile
from collections import defaultdict
from pathlib import Path

from xsched_ops.results.stats import mean_interval

HERE = Path(__file__).parent


_SEEN_RUNS: set[str] = set()


def trials_of(call: Path):
    """Trials of the runs this call added. Calls that found the machine warm carry the earlier
    calls' results folders too (the archive is cumulative), so a run counts once, for the call
    that made it."""
    with tarfile.open(call / "results.tar.gz") as archive:
        for member in archive.getmembers():
            if member.name.endswith("/result.json"):
                document = json.load(archive.extractfile(member))
                if document["run_id"] in _SEEN_RUNS:
                    continue
                _SEEN_RUNS.add(document["run_id"])
                profile = document["meta"]["profile_name"]
                for trial in document["trials"]:
                    yield call.name, profile, trial


def cell(values: list[float], digits: int = 1) -> str:
    interval = mean_interval(values)
    if len(values) == 1 or interval.high is None:
        return f"{values[0]:.{digits}f}"
    return f"{interval.mean:.{digits}f} ± {(interval.high - interval.mean):.{digits}f}"


def main(calls: list[str]) -> None:
    trials_by_call = {name: list(trials_of(HERE / name)) for name in calls}
    rows: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    order: list[tuple[str, str]] = []
    for name in calls:
        for _call, profile, trial in trials_by_call[name]:
            key = (profile, f"{trial['mode']} ({trial['meta'].get('placement')})")
            if key not in order:
                order.append(key)
            high = trial["high"]
            latency = high["latency_ms"]
            low = (trial.get("closed_loop") or {}).get("low") or {}
            for field in ("p50", "p99", "p999", "max"):
                rows[key][field].append(latency[field])
            rows[key]["rate"].append(high["achieved_rate"])
            rows[key]["target"].append(high["target_rate"])
            rows[key]["samples"].append(latency["count"])
            rows[key]["issue_p50"].append(high["issue_delay_ms"]["p50"])
            rows[key]["issue_p99"].append(high["issue_delay_ms"]["p99"])
            rows[key]["service_p50"].append(high["service_ms"]["p50"])
            if low:
                rows[key]["low_ips"].append(low["images_per_s"])
                rows[key]["low_iters"].append(low["iter_per_s"])
            rows[key]["valid"].append(1.0 if trial["valid"] else 0.0)
    for profile in sorted({p for p, _ in order}):
        print(f"\n### {profile} (n = repeats; mean ± 95 % t-interval half-width over repeats)\n")
        print("| mode (placement) | n | samples | P50 ms | P99 ms | P99.9 ms | max ms | achieved / target req/s "
              "| low-priority images/s | valid |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for key in order:
            if key[0] != profile:
                continue
            r = rows[key]
            low = cell(r["low_ips"], 0) if r["low_ips"] else "-"
            print(f"| {key[1]} | {len(r['p50'])} | {int(min(r['samples']))} | {cell(r['p50'], 2)} | {cell(r['p99'], 2)} "
                  f"| {cell(r['p999'], 2)} | {cell(r['max'], 2)} | {cell(r['rate'], 2)} / {r['target'][0]:g} | {low} "
                  f"| {int(sum(r['valid']))}/{len(r['valid'])} |")
    print("\n### The harness against a bare loop (standalone ResNet-18, batch 1)\n")
    print("| call | bare-loop P50 ms (each run) | xsched-ops standalone P50 ms | ratio to the bare loops' median "
          "| standalone service P50 ms | issue delay P50 / P99 ms |")
    print("|---|---|---|---|---|---|")
    for name in calls:
        bare_file = HERE / name / "bare_loop.jsonl"
        if not bare_file.exists():
            continue
        bare = [json.loads(line)["p50_ms"] for line in bare_file.read_text().splitlines() if line.strip()]
        for _call, profile, trial in trials_by_call[name]:
            if trial["mode"] != "standalone":
                continue
            high = trial["high"]
            p50 = high["latency_ms"]["p50"]
            bare_median = sorted(bare)[len(bare) // 2]
            print(f"| {name} ({profile}) | {', '.join(f'{b:.2f}' for b in bare)} | {p50:.2f} | {p50 / bare_median:.2f} "
                  f"| {high['service_ms']['p50']:.2f} | {high['issue_delay_ms']['p50']:.3f} / "
                  f"{high['issue_delay_ms']['p99']:.3f} |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["h100-call3", "h100-call4", "h100-call5", "h100-call6", "h100-call7", "h100-call8",
                          "h100-call9"])
