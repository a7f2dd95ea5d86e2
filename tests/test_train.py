"""TrainConfig: the batch-norm rule (on for batches, off at batch size 1, an error for both), group norm, the network,
mixup."""
import numpy as np
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


def test_mixup_rules_and_command_line():
    "Mixup needs batches and a non-negative Beta parameter; `--mixup` reaches TrainConfig."
    from ser_nbdev.cli import _train_cfg, parser
    with pytest.raises(ValueError, match="strategy 'bs1'"):
        TrainConfig(strategy='bs1', mixup=0.2)
    with pytest.raises(ValueError, match='>= 0'):
        TrainConfig(mixup=-1)
    assert _train_cfg(parser().parse_args(['train', '--mixup', '0.4'])).mixup == 0.4
    assert TrainConfig().mixup == 0


def test_mixup_batch_blends_pairs_and_repeats_with_the_seed():
    import torch
    from ser_nbdev.train import mixup_batch
    x, lengths = torch.rand(6, 1, 8, 20), torch.tensor([20, 18, 15, 20, 12, 9])
    for a in (0.2, 1.0, 4.0):
        runs = [mixup_batch(x, lengths, a, torch.Generator().manual_seed(7)) for _ in range(2)]
        (mixed, mixed_len, partner, lam), again = runs
        assert torch.equal(mixed, again[0]) and lam == again[3] and 0.5 <= lam <= 1
        assert sorted(partner.tolist()) == list(range(6))  # a permutation: every clip is someone's partner
        assert torch.allclose(mixed, lam * x + (1 - lam) * x[partner])
        assert torch.equal(mixed_len, torch.maximum(lengths, lengths[partner]))
    lams = [mixup_batch(x, lengths, 0.2, torch.Generator().manual_seed(s))[3] for s in range(200)]
    # Beta(0.2, 0.2) puts most weight near the ends: max(v, 1 - v) is above 0.9 for most draws, and not for all
    assert 0.5 < np.mean(np.array(lams) > 0.9) < 0.95
    one = mixup_batch(x[:1], lengths[:1], 0.2, torch.Generator().manual_seed(0))
    assert torch.allclose(one[0], x[:1]) and one[1] == lengths[:1]  # a batch of one is blended with itself


@pytest.mark.parametrize('options', [['--strategy', 'bs1', '--mixup', '0.2'], ['--strategy', 'bs1', '--batch-norm'],
                                     ['--batch-norm', '--group-norm']])
def test_contradicting_options_are_a_clear_error(options, capsys, tmp_path):
    "`ser-nbdev train` names the conflict and exits 2 before it loads any corpus, without a traceback."
    from ser_nbdev.cli import main
    assert main(['train', '--out', str(tmp_path / 'run'), *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'Traceback' not in err and not (tmp_path / 'run').exists()
