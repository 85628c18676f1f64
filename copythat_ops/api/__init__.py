"""The application's HTTP face: the FastAPI app (`app`), Prometheus metrics (`metrics`) and their targets file (`targets`)."""
