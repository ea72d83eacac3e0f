"""Alerts: saved searches that notify SNS, SQS, webhooks or files when matching media arrive."""
