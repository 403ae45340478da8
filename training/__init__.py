"""Training, evaluation and reporting for the digitserve model."""
