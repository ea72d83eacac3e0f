"""The read API the CLI, the report and the web gallery call: search, labels, stats, details, export."""
