"""digitserve: handwritten-digit recognition as a web service."""
