"""Errors the CLI turns into one line on stderr and a non-zero exit, never a traceback."""


class BenchError(Exception):
    """A user-facing error: bad input, missing data, unknown name. The message says what to fix."""


class ConfigError(BenchError):
    """A config key or value is unknown or of the wrong type."""


class DatasetError(BenchError):
    """A dataset root is missing or malformed; the message names the folder or file."""


class PluginError(BenchError):
    """A plugin failed to load or register; the message names the file or entry point."""


class Problems:
    """Where readers send what is wrong with a dataset root.

    Without a collector (``collect=False``, what a run uses) the first problem raises
    :class:`DatasetError`; ``bench data check`` collects them all (``collect=True``) and lists
    each ``(path, message)`` pair. The message is a whole sentence that names the path.
    """

    def __init__(self, collect: bool = True) -> None:
        self.collect = collect
        self.items: list[tuple[str, str]] = []

    def report(self, path: object, message: str) -> None:
        if not self.collect:
            raise DatasetError(message)
        self.items.append((str(path), message))

    def __len__(self) -> int:
        return len(self.items)


#: Readers' default: raise on the first problem.
RAISE = Problems(collect=False)
