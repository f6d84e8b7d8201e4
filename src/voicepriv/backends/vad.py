"""Built-in vad plugin (under construction)."""
