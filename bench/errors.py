"""Errors the CLI turns into one line on stderr and a non-zero exit, never a traceback."""


class BenchError(Exception):
    """A user-facing error: bad input, missing data, unknown name. The message says what to fix."""


class ConfigError(BenchError):
    """A config key or value is unknown or of the wrong type."""


class DatasetError(BenchError):
    """A dataset root is missing or malformed; the message names the folder or file."""


class PluginError(BenchError):
    """A plugin failed to load or register; the message names the file or entry point."""
