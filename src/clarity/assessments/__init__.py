"""Clinical assessment instruments: versioned definitions, scoring and trends.

Pure library code: nothing here imports the web, database or auth layers, so the same
scoring runs in the API, in batch jobs and in tests.
"""
