"""digitserve: handwritten-digit recognition as a web service."""

import os

# TensorFlow's C++ start-up chatter (CPU feature notes, plugin registration) is noise for users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
