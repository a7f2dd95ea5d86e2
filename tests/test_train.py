"""TrainConfig: the batch-norm rule (on for batches, off at batch size 1, an error for both), group norm, the network."""
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


@pytest.mark.parametrize('strategy', ['bs1', 'bucketed'])
def test_group_norm_replaces_batch_norm(strategy):
    "Group norm works at any batch size and turns the default batch norm off; asking for both is an error."
    cfg = TrainConfig(strategy=strategy, group_norm=True)
    assert cfg.norm is False
    model = new_model(cfg, 5)
    assert model.norm_after_pool and type(model.norms[0]).__name__ == 'MaskedGroupNorm2d'
    with pytest.raises(ValueError, match='not both'):
        TrainConfig(strategy=strategy, batch_norm=True, group_norm=True)


def test_default_network_and_the_studys():
    "The recipe trains BandCNN; STUDY_RECIPE and `ser-nbdev train --model study` give the study's StudyCNN back."
    from ser_nbdev.cli import _train_cfg, parser
    from ser_nbdev.models import BandCNN, StudyCNN
    from ser_nbdev.train import STUDY_RECIPE
    assert isinstance(new_model(TrainConfig(), 5, n_mels=64), BandCNN)
    study = new_model(TrainConfig(**STUDY_RECIPE), 5)
    assert type(study) is StudyCNN and study.norms is None
    args = parser().parse_args(['train', '--model', 'study'])
    assert _train_cfg(args).model == 'study'
    with pytest.raises(SystemExit):
        parser().parse_args(['train', '--model', 'transformer'])


def test_group_norm_from_the_command_line():
    "`ser-nbdev train --strategy bs1 --group-norm` trains the per-clip group norm that batch size 1 can use."
    from ser_nbdev.cli import _train_cfg, parser
    cfg = _train_cfg(parser().parse_args(['train', '--strategy', 'bs1', '--group-norm']))
    assert cfg.group_norm and cfg.norm is False and new_model(cfg, 5).norm_after_pool
