"""AWS access: clients, error translation, rate limiting, IAM policies and bucket notifications."""
