"""Getting media into the catalogue: the sync pipeline, video jobs, S3 events, workers and Lambda."""
