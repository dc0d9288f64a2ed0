"""The run's seed, read in one place by the training loader and the per-epoch reseeding."""

import pytest
from lightning import seed_everything

from lit_seg.data.sampling import run_seed


def test_run_seed_is_what_seed_everything_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    assert run_seed() is None
    monkeypatch.setenv("PL_GLOBAL_SEED", "0")  # registered, so that the test leaves no seed behind
    seed_everything(1234, verbose=False)
    assert run_seed() == 1234
