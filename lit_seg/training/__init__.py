"""Training: the LightningModule, its loss and optimizer set-up, and the callbacks and loggers of a run."""
