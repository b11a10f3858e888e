"""One module per data source, each turning its published on-disk format into `Record`s."""
