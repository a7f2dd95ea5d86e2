"""TrainConfig's batch-norm rule: on for batches, off at batch size 1, and a clear error when asked for both."""
import pytest

from ser_nbdev.train import TrainConfig, new_model


@pytest.mark.parametrize('strategy, expected', [('bucketed', True), ('resized', True), ('bs1', False)])
def test_batch_norm_follows_the_strategy_by_default(strategy, expected):
    cfg = TrainConfig(strategy=strategy)
    assert cfg.norm is expected
    assert (new_model(cfg, 5).norms is not None) is expected


def test_batch_norm_at_batch_size_1_is_refused():
    with pytest.raises(ValueError, match="strategy 'bs1'"):
        TrainConfig(strategy='bs1', batch_norm=True)
    assert TrainConfig(strategy='bucketed', batch_norm=False).norm is False
