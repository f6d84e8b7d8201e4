"""Built-in keys plugin (under construction)."""
