"""Public data sets tierwise evaluates on, fetched from their source and checked byte for byte."""
