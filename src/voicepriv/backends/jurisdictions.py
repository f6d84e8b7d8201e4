"""Built-in jurisdictions plugin (under construction)."""
