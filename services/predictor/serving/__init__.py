"""Serving: the predictor consumer and the model bundle format it loads."""
