"""Tests of the mock's faults (harness/mock/faults): one test_<module>.py per fault module, beside test_faults_unit.py."""
