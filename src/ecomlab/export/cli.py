"""``ecomlab-export``: write a finished run as a servable bundle.

    ecomlab-export run=logs/train/runs/2026-11-27_10-00-00 format=onnx out=bundles/bpr_shop
    ecomlab-export run=<run dir> format=native out=<dir> ckpt=last

The run is rebuilt as ``ecomlab-eval`` rebuilds it (its ``config.yaml`` checked the same way; ``trust_config=true``
for a run you trust); the bundle layout is described in :mod:`ecomlab.export.writer`. A bad run directory,
checkpoint, format or an existing ``out`` exits with code 2 and one message; a failed export leaves no bundle
behind. With ``ECOMLAB_BUNDLE_KEY`` set the bundle is signed (:mod:`ecomlab.export.manifest`).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from ecomlab.cli import config_errors_exit_2, quiet_third_party, user_errors_exit_2
from ecomlab.eval import trust_flag
from ecomlab.export.api import load
from ecomlab.export.writer import export_run
from ecomlab.utils import config_dir


@config_errors_exit_2
@hydra.main(version_base="1.3", config_path=config_dir(), config_name="export")
@user_errors_exit_2
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    out = export_run(str(cfg.run), str(cfg.format), str(cfg.out), ckpt=str(cfg.ckpt), trust_config=trust_flag(cfg))
    manifest = load(out).manifest  # a bundle that does not load is a bug worth failing on here
    print(f"bundle: {out} ({manifest['model']} on {manifest['dataset']}, format {manifest['format']}, "
          f"{len(manifest['files'])} files)")
    for note in manifest.get("notes") or []:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
