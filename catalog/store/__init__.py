"""The catalogue's storage: engine, schema, vocabulary, summaries, the write path, jobs and claims."""
