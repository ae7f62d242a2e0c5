"""What training iterates: delta windows, the one sample builder, the map-style dataset and its
sampler, the episode-pool stream with its pure schedule, and the `datasets` comparison pipeline."""
