"""Catalog ingest, embeddings, search index management and the ops CLI."""
