"""Built-in storage plugin (under construction)."""
