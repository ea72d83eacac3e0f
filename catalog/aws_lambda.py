"""The AWS Lambda entry point, `catalog.aws_lambda.handler` (see catalog.ingest.aws_lambda)."""

from catalog.ingest.aws_lambda import handler

__all__ = ["handler"]
