"""Built-in embedders plugin (under construction)."""
