"""Built-in speaker plugin (under construction)."""
