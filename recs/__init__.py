"""Recommendations: collaborative, content, popularity, fusion and evaluation."""
