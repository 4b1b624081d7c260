"""Background work on Dramatiq with a Redis broker: broker set-up, actors, and the enqueue API."""
