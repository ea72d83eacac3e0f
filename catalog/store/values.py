"""The values the catalogue stores for media kinds, statuses, sources and the labeller.

Kept apart from the ORM schema (which re-exports them) so that the plain-SQL read path
(catalog.store.sql) can use them without importing SQLAlchemy.
"""

from __future__ import annotations

KIND_IMAGE = "image"
KIND_VIDEO = "video"
STATUS_PENDING = "pending"
STATUS_LABELLED = "labelled"
STATUS_FAILED = "failed"
STATUS_DELETED = "deleted"
STATUSES = (STATUS_PENDING, STATUS_LABELLED, STATUS_FAILED, STATUS_DELETED)
KINDS = (KIND_IMAGE, KIND_VIDEO)

SOURCE_S3 = "s3"
SOURCE_FILE = "file"

# The Rekognition labeller's name, as stored in each result and sync run (catalog.labelling).
LABELLER_REKOGNITION = "rekognition"
