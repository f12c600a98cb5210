"""Built-ins."""
