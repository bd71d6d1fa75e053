"""Part of the saddle lab."""
