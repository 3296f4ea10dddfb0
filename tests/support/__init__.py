"""Test helpers shared by several test modules: file-format readers and data generators."""
