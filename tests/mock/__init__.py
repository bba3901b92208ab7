"""Tests of the mock Gateway (harness/mock): sessions, bounded state, isolation, the image entry points, fuzzing."""
