"""Configuration: the original's af_* keys and defaults, and the layered loader."""

from config.defaults import DEFAULTS
from config.loader import Config, ConfigError, format_config, load_config
from config.logs import setup_logging

__all__ = ["DEFAULTS", "Config", "ConfigError", "format_config", "load_config", "setup_logging"]
