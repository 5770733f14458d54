"""The platform program: validate the stack config, build the Platform, export its outputs."""

import pulumi

from components import Platform, load_config

config = load_config()
platform = Platform(config.cluster.name, config)
for key, value in platform.outputs.items():
    pulumi.export(key, value)
