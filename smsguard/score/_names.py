"""The engines' names: light, so the command line can offer them without importing pyarrow."""

from smsguard._enum import TextEnum


class EngineName(TextEnum):
    """Where `smsguard score` runs: this process, a Spark session on this machine, or a Dask LocalCluster."""

    LOCAL = "local"
    SPARK = "spark"
    DASK = "dask"
