"""The platform program: validate the stack config, build the Platform, export its outputs."""

from components import Platform, load_config

config = load_config()
Platform(config.cluster.name, config).export()
