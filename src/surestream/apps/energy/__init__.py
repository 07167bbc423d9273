"""Energy seed systems: real-time ISO LMP feeds (``iso_*``) and vendor ticks."""
