"""Turn finished runs into a published study folder.

    python scripts/publish_study.py baselines_rec logs/baselines_rec/multiruns/<stamp> \
        --out experiments/baselines_rec --metrics test/ndcg@10 test/recall@10

Run directories may be glob patterns (quoted). Only runs of committed code are published (each row names its
``git_commit``); a run whose record says ``-dirty`` is refused unless ``--allow-uncommitted``. Bad input exits
with code 2 and one line. For the comparison a reviewer reads (protocol check, paired
significance tests, plots, a Markdown report) use ``ecomlab-compare ... --report experiments/<study>/report``.
"""

from __future__ import annotations

import argparse

from ecomlab.cli import user_errors_exit_2
from ecomlab.report.study import publish_study


@user_errors_exit_2
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", help="study name (the experiments/ folder name)")
    parser.add_argument("runs", nargs="+", help="run or sweep directories holding metrics.json files, or glob patterns")
    parser.add_argument("--out", required=True, help="study folder, e.g. experiments/<study>")
    parser.add_argument("--metrics", nargs="*", default=None, help="metrics for summary.md (default: all)")
    parser.add_argument("--config-keys", nargs="*", default=(),
                        help="dotted config keys that tell variants apart, e.g. model.optimizer.lr")
    parser.add_argument("--allow-uncommitted", action="store_true",
                        help="publish runs whose git_commit is missing or -dirty (say so in the README)")
    args = parser.parse_args()
    results = publish_study(args.study, args.runs, args.out, args.metrics, args.config_keys,
                            args.allow_uncommitted)
    print(f"{len(results)} runs -> {args.out}/results.csv, {args.out}/summary.md")


if __name__ == "__main__":
    main()
