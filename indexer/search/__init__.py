"""Search behind one interface, with an embedded and an Elasticsearch backend."""
