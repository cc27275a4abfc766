"""Scoring a Dask DataFrame (`pip install "smsguard[dask]"`): `score(ddf, bundle)`; see `smsguard.score.dask`."""

from smsguard.score.dask import DaskEngine, check_frame, local_client, score, score_frame

__all__ = ["DaskEngine", "check_frame", "local_client", "score", "score_frame"]
