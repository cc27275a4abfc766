"""Scoring a Spark DataFrame (`pip install "smsguard[spark]"`, Java 17+): `score(df, bundle)`; see `smsguard.score.spark`."""

from smsguard.score.spark import DEFAULT_MASTER, SparkEngine, check_spark_schema, java_problem, local_session, score

__all__ = ["DEFAULT_MASTER", "SparkEngine", "check_spark_schema", "java_problem", "local_session", "score"]
