"""Artifacts: the content-addressed cache of converted models and the target a job runs."""
