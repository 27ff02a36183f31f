"""Task Center callbacks: the domain app."""

# Sent to receivers in User-Agent (taskcenter-callbacks/<version>); keep in step with pyproject.toml.
__version__ = "0.1.0"
