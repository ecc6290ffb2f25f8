"""Turn finished runs into a published study folder.

    python scripts/publish_study.py baselines_rec logs/baselines_rec/multiruns/<stamp> \
        --out experiments/baselines_rec --metrics test/ndcg@10 test/recall@10

Run directories may be glob patterns (quoted). For the comparison a reviewer reads (protocol check, paired
significance tests, plots, a Markdown report) use ``ecomlab-compare ... --report experiments/<study>/report``.
"""

from __future__ import annotations

import argparse

from ecomlab.report.study import publish_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", help="study name (the experiments/ folder name)")
    parser.add_argument("runs", nargs="+", help="run or sweep directories holding metrics.json files, or glob patterns")
    parser.add_argument("--out", required=True, help="study folder, e.g. experiments/<study>")
    parser.add_argument("--metrics", nargs="*", default=None, help="metrics for summary.md (default: all)")
    parser.add_argument("--config-keys", nargs="*", default=(),
                        help="dotted config keys that tell variants apart, e.g. model.optimizer.lr")
    args = parser.parse_args()
    results = publish_study(args.study, args.runs, args.out, args.metrics, args.config_keys)
    print(f"{len(results)} runs -> {args.out}/results.csv, {args.out}/summary.md")


if __name__ == "__main__":
    main()
