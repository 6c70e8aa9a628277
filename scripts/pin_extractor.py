"""Make the pinned classifier feature extractor that ships with akdg (akdg/data/extractors/).

The pinned weights are a versioned artifact, like Inception's: they are made once, committed, and
their SHA-256 is fixed in ``akdg/extractor_pins.py``. Rerunning this script on another CPU gives
other weights (other SIMD kernels), which is exactly why the weights, not this script, are the metric.
It trains with the embedded default's dataset and ``extractor`` options, on one thread.

    .venv/bin/python scripts/pin_extractor.py            # writes akdg/data/extractors/digits-r16.{pt,json}
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import torch

from akdg import datasets
from akdg.config import load_config
from akdg.extractor_pins import PINNED_DIR
from akdg.feature_extractor_classifier import train_classifier
from akdg.io import sha256_file, write_json
from akdg.protocol import cpu_model, environment

log = logging.getLogger("pin_extractor")
ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--config", type=Path, default=ROOT / "config" / "config.yaml", help="config whose dataset and extractor options are used"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = load_config(args.config)
    torch.set_num_threads(1)
    options = {key: value for key, value in config["extractor"].items() if key != "source"}
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data.npz"
        datasets.prepare(config["dataset"], data)
        splits = datasets.load_prepared(data)
        out = PINNED_DIR / f"{config['dataset']['name']}-r{splits.resolution}.pt"
        protocol = train_classifier(splits, options, out)
    protocol.update(
        weights_sha256=sha256_file(out),
        made_with={"script": "scripts/pin_extractor.py", "threads": 1, "cpu": cpu_model(), **environment()},
    )
    write_json(out.with_suffix(".json"), protocol)
    log.info(
        "wrote %s (sha256 %s, test accuracy %.4f); put the sha256 in akdg/extractor_pins.py",
        out,
        protocol["weights_sha256"],
        protocol["test_accuracy"],
    )


if __name__ == "__main__":
    main()
