"""catalog: a searchable media catalogue for image and video libraries kept in Amazon S3."""

__version__ = "0.1.0"
