"""Built-in adapters plugin (under construction)."""
