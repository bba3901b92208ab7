"""Evidence: what a run measured, in one shape, with account ids redacted."""
