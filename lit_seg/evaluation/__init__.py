"""Evaluation: metrics, inference modes, the dense CRF, boundary F1, reports and prediction outputs."""
