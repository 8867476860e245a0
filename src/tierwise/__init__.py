"""tierwise: cheap local models and frontier models as one system."""

__version__ = "0.1.0"
