"Tests of ser_nbdev.data: audio formats, bad files, the corpus loaders, the summary and the splits."
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_nbdev.data import (AudioError, CorpusError, audio_header, carve_validation, detect_kind, load_audio,
                            load_corpus, loso_folds, parse_name, riff_chunks, speaker_split, study_split)

SR = 16000
# the 36 bytes of AESDD's sadness/s05 (3).wav: a float32 mono 44.1 kHz header and no 'data' chunk
HEADER_ONLY = b'RIFF' + struct.pack('<I4s4sIHHIIHH', 28, b'WAVE', b'fmt ', 16, 3, 1, 44100, 176400, 4, 32)


def tone(n: int = SR, f: float = 220.0, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    "A slightly noisy sine, float32."
    t = np.arange(n) / SR
    noise = 0.01 * np.random.default_rng(seed).standard_normal(n)
    return (amp * np.sin(2 * np.pi * f * t) + noise).astype(np.float32)


def write(path: Path, y=None, subtype: str = 'PCM_16', sr: int = SR) -> Path:
    "Write `y` (default: a tone) to `path`, making folders."
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone() if y is None else y, sr, subtype=subtype)
    return path


# ---------------------------------------------------------------- load_audio

@pytest.mark.parametrize('name,subtype,tol', [('a.wav', 'PCM_16', 2 ** -15), ('a.wav', 'PCM_24', 2 ** -23),
                                              ('a.wav', 'FLOAT', 0.0), ('a.flac', 'PCM_16', 2 ** -15),
                                              ('a.flac', 'PCM_24', 2 ** -23)])
def test_formats_round_trip(tmp_path, name, subtype, tol):
    y0 = tone()
    y, sr = load_audio(write(tmp_path / name, y0, subtype))
    assert sr == SR and y.dtype == np.float32 and y.shape == y0.shape
    assert np.abs(y - y0).max() <= tol


def test_stereo_is_averaged(tmp_path):
    left, right = tone(f=220), tone(f=330, seed=1)
    y, _ = load_audio(write(tmp_path / 's.wav', np.stack([left, right], axis=1), 'FLOAT'))
    assert y.ndim == 1 and np.allclose(y, (left + right) / 2, atol=1e-7)
    assert audio_header(tmp_path / 's.wav').channels == 2


def test_resampling_is_explicit(tmp_path):
    path = write(tmp_path / 'r.wav')
    assert load_audio(path)[1] == SR and len(load_audio(path)[0]) == SR  # no sr: native rate
    y, sr = load_audio(path, sr=8000)
    assert sr == 8000 and y.dtype == np.float32 and len(y) == 8000
    assert load_audio(path, sr=SR)[0].shape == (SR,)


@pytest.mark.parametrize('make,reason', [
    (lambda p: p.write_bytes(b''), 'empty file'),
    (lambda p: p.write_bytes(HEADER_ONLY), "header only: a 36-byte WAV header with no 'data' chunk"),
    (lambda p: p.write_text('not audio at all\n' * 20), 'not audio'),
    (lambda p: p.write_bytes(os.urandom(4000)), 'not audio'),
    (lambda p: write(p, np.zeros(SR, np.float32)), 'silent'),
    (lambda p: write(p, np.full(SR, 1e-5, np.float32), 'FLOAT'), 'silent (peak -100 dBFS'),
    (lambda p: write(p, np.where(np.arange(SR) < 100, tone(), np.nan).astype(np.float32), 'FLOAT'), 'NaN'),
    (lambda p: write(p, np.where(np.arange(SR) == 5, np.inf, tone()).astype(np.float32), 'FLOAT'), 'NaN or inf'),
    (lambda p: write(p, np.zeros((0,), np.float32)), 'header only'),
])
def test_bad_files_raise(tmp_path, make, reason):
    path = tmp_path / 'bad.wav'
    make(path)
    with pytest.raises(AudioError) as e:
        load_audio(path)
    assert reason in e.value.reason and 'bad.wav' in str(e.value)


def test_truncated_flac_is_corrupt(tmp_path):
    good = write(tmp_path / 'good.flac')
    bad = tmp_path / 'bad.flac'
    bad.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])
    with pytest.raises(AudioError, match='corrupt'):
        load_audio(bad)


def test_stereo_that_cancels_is_silent(tmp_path):
    y = tone()
    with pytest.raises(AudioError, match='silent'):
        load_audio(write(tmp_path / 'c.wav', np.stack([y, -y], axis=1), 'FLOAT'))


def test_riff_chunks_and_header_only():
    assert riff_chunks(HEADER_ONLY) == [('fmt ', 20, 16)]
    with pytest.raises(ValueError):
        riff_chunks(b'fLaC' + bytes(40))


# ---------------------------------------------------------------- names

def test_parse_name():
    assert parse_name('a01 (1)', 'aesdd') == ('anger', '1', '')
    assert parse_name('d03 (01)', 'aesdd') == ('disgust', '1', '')
    assert parse_name('s01 (5)a', 'aesdd') == ('sadness', '5', 'a')
    assert parse_name('h12 (6)b', 'aesdd') == ('happiness', '6', 'b')
    assert parse_name('03a01Fa', 'emodb') == ('happiness', '3', 'a')
    assert [parse_name(f'03a01{c}a', 'emodb')[0] for c in 'WLEAFTN'] == [
        'anger', 'boredom', 'disgust', 'fear', 'happiness', 'sadness', 'neutral']
    assert parse_name('03-01-05-01-02-01-12', 'ravdess') == ('anger', '12', '01')
    assert [parse_name(f'03-01-{e:02d}-01-01-01-01', 'ravdess')[0] for e in range(1, 9)] == [
        'neutral', 'calm', 'happiness', 'sadness', 'anger', 'fear', 'disgust', 'surprise']
    for stem, kind in [('x01 (1)', 'aesdd'), ('a01 (1) copy', 'aesdd'), ('03a01Xa', 'emodb'),
                       ('03-01-09-01-01-01-01', 'ravdess'), ('03-01-05', 'ravdess')]:
        with pytest.raises(ValueError):
            parse_name(stem, kind)


# ---------------------------------------------------------------- corpora

def aesdd_tree(root: Path, flat: bool = False) -> Path:
    "A small AESDD corpus: 2 speakers x 2 utterances per emotion, one (01) name, one b take, 16/24-bit, FLAC."
    emotions = ['anger', 'disgust', 'fear', 'happiness', 'sadness']
    for k, emotion in enumerate(emotions):
        for spk in (1, 2):
            for utt in (1, 2):
                name = f'{emotion[0]}{utt:02d} ({spk})'
                folder = root if flat else root / emotion
                write(folder / f'{name}.flac', tone(f=200 + 20 * k + utt, seed=spk), 'PCM_24' if spk == 2 else 'PCM_16')
    folder = root if flat else root / 'disgust'
    write(folder / 'd03 (01).wav', tone(seed=9), 'FLOAT')
    write(folder / 'd01 (2)b.wav', tone(seed=8), 'PCM_24')
    return root


def test_aesdd_folders(tmp_path):
    root = aesdd_tree(tmp_path / 'aesdd')
    (root / 'README.md').write_text('documentation is ignored')
    (root / 'sadness' / '.DS_Store').write_bytes(b'\0' * 10)
    (root / 'sadness' / 's05 (3).wav').write_bytes(HEADER_ONLY)
    c = load_corpus(root)
    assert c.kind == 'aesdd' and len(c) == 22
    assert c.counts() == {'anger': 4, 'disgust': 6, 'fear': 4, 'happiness': 4, 'sadness': 4}
    assert c.speakers == ['1', '2'] and c.labels == ['anger', 'disgust', 'fear', 'happiness', 'sadness']
    assert [c.rel(s.path) for s in c.skipped] == ['sadness/s05 (3).wav']
    assert 'header only' in c.skipped[0].reason
    d01 = next(x for x in c.clips if x.path.name == 'd01 (2)b.wav')
    assert (d01.label, d01.speaker, d01.take, d01.sr, d01.channels) == ('disgust', '2', 'b', SR, 1)
    assert abs(d01.duration - 1.0) < 1e-9
    assert next(x for x in c.clips if x.path.name == 'd03 (01).wav').speaker == '1'
    assert load_corpus(root, verify=False).counts() == c.counts()


def test_aesdd_flat(tmp_path):
    c = load_corpus(aesdd_tree(tmp_path / 'flat', flat=True))
    assert c.kind == 'aesdd' and len(c) == 22 and c.counts()['disgust'] == 6 and not c.skipped


def test_every_bad_kind_is_reported_and_good_kept(tmp_path):
    root = aesdd_tree(tmp_path / 'c')
    bad = {'anger/a09 (1).wav': lambda p: p.write_bytes(b''),
           'anger/a09 (2).wav': lambda p: p.write_bytes(HEADER_ONLY),
           'fear/f09 (1).wav': lambda p: p.write_text('hello'),
           'fear/f09 (2).flac': lambda p: p.write_bytes((root / 'fear/f01 (1).flac').read_bytes()[:2000]),
           'sadness/s09 (1).wav': lambda p: write(p, np.zeros(SR, np.float32)),
           'sadness/s09 (2).wav': lambda p: write(p, np.full(SR, np.nan, np.float32), 'FLOAT'),
           'happiness/a01 (1).wav': lambda p: write(p),  # the name says anger
           'happiness/h01 (1) copy.wav': lambda p: write(p),
           'anger/notes.zip': lambda p: p.write_bytes(b'PK\3\4' + bytes(30))}
    for rel, make in bad.items():
        make(root / rel)
    c = load_corpus(root)
    assert len(c) == 22 and sorted(c.rel(s.path) for s in c.skipped) == sorted(bad)
    reasons = {c.rel(s.path): s.reason for s in c.skipped}
    assert reasons['anger/a09 (1).wav'].startswith('empty')
    assert reasons['anger/a09 (2).wav'].startswith('header only')
    assert reasons['fear/f09 (1).wav'].startswith('not audio')
    assert reasons['fear/f09 (2).flac'].startswith('corrupt')
    assert reasons['sadness/s09 (1).wav'].startswith('silent')
    assert 'NaN' in reasons['sadness/s09 (2).wav']
    assert "folder 'happiness'" in reasons['happiness/a01 (1).wav']
    assert 'does not follow' in reasons['happiness/h01 (1) copy.wav']
    lines = c.summary().splitlines()
    assert lines[-1] == f'clips 22 labels 5 speakers 2 skipped {len(bad)}'
    assert '  anger/a09 (2).wav: ' + reasons['anger/a09 (2).wav'] in lines
    assert str(tmp_path) not in c.summary()  # paths relative to the corpus root


def test_unknown_label_folder_is_an_error(tmp_path):
    root = aesdd_tree(tmp_path / 'c')
    write(root / 'angry' / 'a05 (1).wav')
    with pytest.raises(CorpusError, match='angry') as e:
        load_corpus(root)
    assert 'found: anger, angry, disgust, fear, happiness, sadness' in str(e.value)
    assert load_corpus(root, kind='folders').counts()['angry'] == 1  # any folder is a label there


def test_empty_corpus_is_an_error(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(CorpusError, match='empty'):
        load_corpus(tmp_path / 'empty')
    bad = tmp_path / 'bad'
    write(bad / 'anger' / 'a01 (1).wav', np.zeros(100, np.float32))
    (bad / 'anger' / 'a02 (1).wav').write_bytes(HEADER_ONLY)
    with pytest.raises(CorpusError, match=r"no usable clip; found 2 file\(s\): anger/a01 \(1\).wav: silent"):
        load_corpus(bad)
    with pytest.raises(FileNotFoundError):
        load_corpus(tmp_path / 'missing')
    with pytest.raises(ValueError, match='kind'):
        load_corpus(bad, kind='timit')


def test_emodb(tmp_path):
    root = tmp_path / 'emodb' / 'wav'
    for i, name in enumerate(['03a01Fa', '03a01Wa', '08b02Tc', '16a05Nb', '10a07La', '11b03Ea', '12a02Ab']):
        write(root / f'{name}.wav', tone(seed=i))
    c = load_corpus(tmp_path / 'emodb')
    assert c.kind == 'emodb' and len(c) == 7 and c.speakers == ['3', '8', '10', '11', '12', '16']
    assert c.labels == ['anger', 'boredom', 'disgust', 'fear', 'happiness', 'neutral', 'sadness']
    assert next(x for x in c.clips if x.path.stem == '08b02Tc').take == 'c'


def test_ravdess(tmp_path):
    root = tmp_path / 'ravdess'
    for actor in (1, 2, 12):
        for e in (1, 3, 5, 8):
            write(root / f'Actor_{actor:02d}' / f'03-01-{e:02d}-01-01-02-{actor:02d}.wav', tone(seed=actor + e))
    write(root / 'Actor_01' / '03-01-05-02-01-01-01.wav', np.stack([tone(), tone(seed=3)], axis=1))
    c = load_corpus(root)
    assert c.kind == 'ravdess' and len(c) == 13 and c.speakers == ['1', '2', '12']
    assert c.counts() == {'anger': 4, 'happiness': 3, 'neutral': 3, 'surprise': 3}
    assert {x.take for x in c.clips} == {'01', '02'} and sorted(set(c.column('channels'))) == [1, 2]


def test_generic_folders(tmp_path):
    root = tmp_path / 'mine'
    write(root / 'calm' / 'take 1.wav')
    write(root / 'calm' / 'take 2.flac', tone(seed=2))
    write(root / 'tense' / 'a03 (4).wav', tone(seed=3))  # speaker borrowed from the AESDD scheme
    write(root / 'stray.wav', tone(seed=4))
    assert detect_kind(root) == 'folders'
    c = load_corpus(root)
    assert c.kind == 'folders' and c.counts() == {'calm': 2, 'tense': 1}
    assert c.column('speaker') == ['unknown', 'unknown', '4']
    assert [(c.rel(s.path), s.reason) for s in c.skipped] == [('stray.wav', 'lies outside any label folder')]


def test_unknown_layout_is_an_error(tmp_path):
    write(tmp_path / 'x' / 'hello.wav')
    with pytest.raises(CorpusError, match='cannot tell'):
        load_corpus(tmp_path / 'x')


def test_summary_format(tmp_path):
    c = load_corpus(aesdd_tree(tmp_path / 'c'))
    s = c.summary()
    assert s.splitlines()[-1] == 'clips 22 labels 5 speakers 2 skipped 0'
    assert 'disgust          6' in s and 'speakers (clips): 1 (11), 2 (11)' in s and '16000 Hz (22)' in s
    assert repr(c) == "Corpus('aesdd', 'c', clips=22, skipped=0)"


def test_embedded_corpus():
    c = load_corpus(None)
    assert c.kind == 'aesdd' and len(c) == 300 and not c.skipped and len(c.speakers) == 6
    assert set(c.counts().values()) == {60}


@pytest.mark.skipif(not os.environ.get('SER_NBDEV_AESDD'), reason='SER_NBDEV_AESDD is not set')
def test_real_aesdd():
    c = load_corpus(os.environ['SER_NBDEV_AESDD'])
    assert c.counts() == {'anger': 121, 'disgust': 122, 'fear': 120, 'happiness': 119, 'sadness': 122}
    assert len(c.speakers) == 6 and [c.rel(s.path) for s in c.skipped] == ['sadness/s05 (3).wav']
    assert c.summary().splitlines()[-1] == 'clips 604 labels 5 speakers 6 skipped 1'


# ---------------------------------------------------------------- splits

LABELS = [e for e in ['anger', 'disgust', 'fear', 'happiness', 'sadness'] for _ in range(24)]
SPEAKERS = [str(1 + i % 6) for i in range(len(LABELS))]


def disjoint_cover(parts, n):
    "The parts share no index and together hold every index once."
    joined = np.concatenate(parts)
    return len(joined) == n and len(set(joined.tolist())) == n


def test_study_split():
    train, test = study_split(LABELS)
    assert disjoint_cover([train, test], len(LABELS)) and len(test) == 24
    assert all(np.array_equal(a, b) for a, b in zip((train, test), study_split(LABELS)))  # deterministic
    assert not np.array_equal(test, study_split(LABELS, seed=0)[1])
    per_label = np.unique(np.array(LABELS)[test], return_counts=True)[1]
    assert len(per_label) == 5 and set(per_label) <= {4, 5}  # stratified: 24 * 0.2 = 4.8 per label


def test_carve_validation():
    train, test = study_split(LABELS)
    tr, val = carve_validation(train, LABELS)
    assert disjoint_cover([tr, val, test], len(LABELS)) and set(val) <= set(train)
    assert all(np.array_equal(a, b) for a, b in zip((tr, val), carve_validation(train, LABELS)))
    assert len(set(np.array(LABELS)[val])) == 5
    with pytest.raises(ValueError, match='whole corpus'):
        carve_validation(train, np.array(LABELS)[train][:10])


def test_speaker_split():
    train, test = speaker_split(SPEAKERS, ['5', 6])
    spk = np.array(SPEAKERS)
    assert disjoint_cover([train, test], len(SPEAKERS))
    assert set(spk[test]) == {'5', '6'} and not set(spk[train]) & set(spk[test])
    assert np.array_equal(speaker_split(SPEAKERS, '5')[1], np.flatnonzero(spk == '5'))
    with pytest.raises(ValueError, match='found: 1, 2, 3, 4, 5, 6'):
        speaker_split(SPEAKERS, ['7'])


def test_loso_folds():
    folds = loso_folds(SPEAKERS)
    assert [s for s, _, _ in folds] == ['1', '2', '3', '4', '5', '6']
    spk = np.array(SPEAKERS)
    for s, train, test in folds:
        assert disjoint_cover([train, test], len(SPEAKERS)) and set(spk[test]) == {s} and s not in set(spk[train])
    assert disjoint_cover([test for _, _, test in folds], len(SPEAKERS))  # every clip is tested exactly once
