"""Offline SWE-bench Lite harness (venv per instance) and a simple agentless pipeline.

Results are unofficial (see the data folder's README): tracked as their own metric.
"""
