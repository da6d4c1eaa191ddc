"""`videorft synth`: write the synthetic video world of `cfg.synth` (loaders/synth/world.py)."""

from __future__ import annotations

from typing import Any

from videorft.engine.config import RunConfig
from videorft.engine.config_loader import ConfigError
from videorft.engine.run_dir import RunDir, log
from videorft.loaders.synth.world import WorldConfigError, generate_world


def run(cfg: RunConfig) -> dict[str, Any]:
    """Write the world; bad synth settings are a config error naming the field."""
    run_dir = RunDir(cfg, "synth")
    try:
        summary = generate_world(cfg.synth)
    except WorldConfigError as err:
        raise ConfigError(str(err)) from None
    log.info("synthetic world: %d train + %d test records in %s (%.1f s, %d workers)", summary["train"],
             summary["test"], summary["output_dir"], summary["seconds"], summary["workers"])
    run_dir.close()
    return summary
