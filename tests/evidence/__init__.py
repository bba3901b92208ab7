"""Tests of evidence and reports (harness/evidence): categories, plots, pinning, the report chain, redaction."""
