"""Built-in channels plugin (under construction)."""
