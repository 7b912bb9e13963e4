"""Smoothing: the filters alone on synthetic signals, causality of the online mode, the bounded
window of the offline mode, one signal per track, and the stage over frames."""
from __future__ import annotations

import numpy as np
import pytest

from dope.inputs.sources import Item
from dope.motion.smoothing import (OfflineSmoother, OneEuroFilter, OneEuroParams, OnlineSmoother,
                                        local_fit_weights, smooth)
from dope.results import PartArrays, Result
from dope.stream import Frame

RATE = 30.0


def tracked(points2d, points3d=None, tracks=(0,)):
    """A Result of bodies whose every joint sits at points2d[k] (and points3d[k]), with those tracks."""
    n = len(tracks)
    p2 = np.repeat(np.asarray(points2d, np.float64).reshape(n, 1, 2), 13, 1)
    p2 = p2 + np.linspace(0, 120, 13)[None, :, None]  # a body-sized spread of joints
    p3 = np.zeros((n, 13, 3)) if points3d is None else np.repeat(np.asarray(points3d).reshape(n, 1, 3), 13, 1)
    return Result(720, 1280, body=PartArrays("body", [0.9] * n, p2, p3, track=np.asarray(tracks, np.int64)))


def test_one_euro_removes_noise_at_rest_and_follows_a_ramp_without_lag():
    rng = np.random.default_rng(0)
    t = np.arange(300) / RATE
    f = OneEuroFilter(OneEuroParams(), scale=1.0)
    noisy = 5 + rng.normal(0, 0.1, 300)
    rest = np.array([f.filter(x, s) for x, s in zip(noisy, t)])
    assert rest[50:].std() < 0.8 * 0.1  # less noise ...
    assert np.diff(rest[50:]).std() < 0.4 * np.diff(noisy[50:]).std()  # ... and far less jitter
    f = OneEuroFilter(OneEuroParams(), scale=1.0)
    ramp = np.array([f.filter(2.0 * s, s) for s in t])  # 2 units per second
    assert np.abs(ramp[60:] - 2.0 * t[60:]).max() < 1e-3  # constant speed: no lag once settled
    plain = OneEuroFilter(OneEuroParams(predict=False), scale=1.0)
    lagging = np.array([plain.filter(2.0 * s, s) for s in t])
    assert np.abs(lagging[60:] - 2.0 * t[60:]).mean() > 0.05  # the filter without prediction lags


def test_online_is_causal():
    rng = np.random.default_rng(1)
    xs = 300 + 5 * np.arange(40) + rng.normal(0, 3, 40)
    a = [r.body.pose2d.copy() for r in OnlineSmoother().run([tracked([[x, 200]]) for x in xs])]
    changed = xs.copy()
    changed[25:] += 100  # later input changes
    b = [r.body.pose2d.copy() for r in OnlineSmoother().run([tracked([[x, 200]]) for x in changed])]
    for k in range(25):
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.allclose(a[25], b[25])


def test_local_fit_weights_are_zero_phase_and_exact_on_quadratics():
    w = local_fit_weights(10, 10, 3.0, 2)
    np.testing.assert_allclose(w, w[::-1], atol=1e-12)
    k = np.arange(-10, 11)
    assert w @ (3 + 2 * k + 0.5 * k ** 2) == pytest.approx(3)
    one_sided = local_fit_weights(10, 2, 3.0, 2)  # near a track's end
    k = np.arange(-10, 3)
    assert one_sided @ (3 - k + 0.2 * k ** 2) == pytest.approx(3)


def test_offline_smooths_a_noisy_walk_with_a_bounded_delay_and_memory():
    rng = np.random.default_rng(2)
    n = 200
    truth = 300 + 6 * np.arange(n) + 30 * np.sin(2 * np.pi * np.arange(n) / RATE)
    raw = truth + rng.normal(0, 3, n)
    sm = OfflineSmoother(window=10)
    out = []
    for k, x in enumerate(raw):
        ready = sm.push(tracked([[x, 200]]), tag=k)
        assert [tag for tag, _ in ready] == ([k - 10] if k >= 10 else [])  # exactly `window` frames late
        assert len(sm._pending) <= 11 and len(sm._rings) == 1  # memory: one window, one signal
        out += [r for _, r in ready]
    out += [r for _, r in sm.flush()]
    got = np.array([r.body.pose2d[0, 0, 0] for r in out])
    err, raw_err = np.abs(got - truth).mean(), np.abs(raw - truth).mean()
    assert err < 0.6 * raw_err
    acc = lambda s: np.diff(s, 2)
    assert np.abs(acc(got) - acc(truth)).mean() < 0.2 * np.abs(acc(raw) - acc(truth)).mean()


def test_offline_fills_short_gaps_and_never_mixes_tracks():
    sm = OfflineSmoother(window=5)
    frames = []
    for k in range(30):
        tracks, pts = [], []
        if not 12 <= k < 15:  # track 0 missing for 3 frames
            tracks.append(0)
            pts.append([100.0 + k, 100.0])
        tracks.append(1)
        pts.append([900.0, 500.0])  # track 1 stands still, far away
        frames.append(tracked(pts, tracks=tracks))
    out = list(sm.run(frames))
    for k, r in enumerate(out):
        for p, t in zip(r.body.pose2d, r.body.track):
            want = 100.0 + k if t == 0 else 900.0
            assert p[0, 0] == pytest.approx(want, abs=1e-3)  # a line stays a line, gap or not


def test_untracked_detections_pass_unchanged_and_off_is_identity():
    r = tracked([[100, 100], [500, 100]], tracks=(0, -1))
    out = list(OfflineSmoother(window=2).run([r] * 5))
    np.testing.assert_array_equal(out[2].body.pose2d[1], r.body.pose2d[1])
    frames = [Frame(Item(k, "v.mp4", k, k / RATE), None, r) for k in range(3)]
    assert list(smooth(frames, "off")) == frames
    with pytest.raises(ValueError, match="unknown smoothing mode"):
        list(smooth(frames, "strong"))


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_stage_keeps_every_frame_in_order_and_attached_wrists(mode):
    from benchmarks.scenes import make_scene
    from dope.motion.tracking import track
    scene = make_scene(2, 40, seed=0, miss=0.0, false_positives=0.0)
    frames = [Frame(Item(k, "v.mp4", k, k / RATE), None, r) for k, r in enumerate(scene.results)]
    out = list(smooth(track(frames), mode))
    assert [f.item.frame for f in out] == list(range(40))
    for f in out:
        b = f.result.body
        for link, joint in (("left_hand", 7), ("right_hand", 6)):
            for i, h in enumerate(b.fields[link]):
                if h >= 0:
                    np.testing.assert_array_equal(b.pose2d[i, joint], f.result.hand.pose2d[h, 0])


def test_kalman_measures_its_noise_smooths_without_lag_and_one_euro_remains():
    """The online filter alone: on a noisy walk it lowers the error and the jitter, follows a ramp
    without lag, and its measured noise level is the one added."""
    rng = np.random.default_rng(3)
    n = 300
    truth = 300 + 4 * np.arange(n) + 20 * np.sin(2 * np.pi * 0.5 * np.arange(n) / RATE)
    spread = np.stack([np.linspace(0, 120, 13), np.linspace(0, 300, 13)], -1)  # a body-sized pose
    clean = np.stack([truth, np.full(n, 200.0)], -1)[:, None] + spread  # float[n, 13, 2]
    raw = clean + rng.normal(0, 3, clean.shape)
    frames = [Result(720, 1280, body=PartArrays("body", [0.9], raw[k][None], np.zeros((1, 13, 3)), track=[0]))
              for k in range(n)]
    sm = OnlineSmoother()
    got = np.array([sm.update(f).body.pose2d[0] for f in frames])
    err = np.linalg.norm(got - clean, axis=-1)[30:].mean()
    raw_err = np.linalg.norm(raw - clean, axis=-1)[30:].mean()
    assert err < 0.85 * raw_err
    acc = lambda s: np.diff(s, 2, axis=0)
    assert np.linalg.norm(acc(got) - acc(clean), axis=-1).mean() < 0.65 * np.linalg.norm(acc(raw) - acc(clean), axis=-1).mean()
    # The joints' offsets' measured noise: (E d2^2 - E d2 d2') / 10, in box diagonals^2: 3 px.
    k = sm._signals.rows["s"][:, :13]
    diagonal = np.hypot(120, 300)
    r = (k[3, :, 0] - k[4, :, 0]).mean() / 10 * diagonal ** 2
    assert 0.5 < np.sqrt(r) / 3 < 1.5, np.sqrt(r)
    ramp = OnlineSmoother()
    line = [ramp.update(tracked([[100 + 5 * k, 200]])).body.pose2d[0, 0, 0] for k in range(60)]
    np.testing.assert_allclose(line[20:], 100 + 5 * np.arange(20, 60), atol=1e-3)  # constant speed: no lag
    euro = OnlineSmoother(method="one_euro")
    assert euro.update(frames[0]).body.pose2d.shape == (1, 13, 2)
    with pytest.raises(ValueError, match="unknown online filter"):
        OnlineSmoother(method="wiener")


def _swinging_body(frames, amplitude, hz):
    """float[frames, 13, 2]: a body's joints spread over 120 x 300 px, the even ones swinging
    sideways by `amplitude` px at `hz`, the odd ones against them."""
    t = np.arange(frames) / RATE
    spread = np.stack([np.linspace(0, 120, 13), np.linspace(0, 300, 13)], -1)
    swing = np.zeros((frames, 13, 2))
    swing[:, ::2, 0] = amplitude * np.sin(2 * np.pi * hz * t)[:, None]
    swing[:, 1::2, 0] = -swing[:, ::2, 0][:, :6]
    return spread + swing


def test_online_process_noise_follows_the_whiteness_of_its_innovations():
    """A filter that lags the motion makes errors that persist from frame to frame; one that
    follows the noise makes errors that alternate. A body whose limbs swing fast (1.5 Hz, 40 px)
    is lagged by the fixed process noise (1.6x the detections' error); steered by its innovations'
    correlation, the multiplier goes up and the error falls below the detections'. At rest, the
    multiplier goes down and the error falls too."""
    moving = np.array([400.0, 200.0]) + _swinging_body(300, 40, 1.5)
    still = np.broadcast_to(np.array([400.0, 200.0]) + _swinging_body(300, 0, 1.5), moving.shape)

    def run(truth, **params):
        raw = truth + np.random.default_rng(6).normal(0, 2.0, truth.shape)
        sm = OnlineSmoother(**params)
        out = np.array([sm.update(Result(720, 1280, body=PartArrays("body", [0.9], p[None], np.zeros((1, 13, 3)),
                                                                      track=[0]))).body.pose2d[0] for p in raw])
        error = lambda x: np.linalg.norm(x - truth, axis=-1)[60:].mean()
        return error(out), error(raw), sm._signals.rows["s"][9, :13, 0].mean()  # log multiplier, offsets' 2D

    steered, raw_err, log_gain = run(moving)
    fixed, _, fixed_gain = run(moving, whiteness_step=0)
    assert fixed > 1.3 * raw_err and steered < 0.97 * raw_err and log_gain > 1.0 and fixed_gain == 0, \
        (steered, fixed, raw_err, log_gain)
    steered, raw_err, log_gain = run(still)
    fixed, _, _ = run(still, whiteness_step=0)
    assert steered < 0.95 * fixed and log_gain < -1.0, (steered, fixed, log_gain)
    for bad in ({"whiteness_range": 0.5}, {"whiteness_step": -0.1}, {"whiteness_rate": 2.0}):
        with pytest.raises(ValueError, match="KalmanParams"):
            OnlineSmoother(**bad)


def test_online_filter_counts_in_the_stream_s_own_frames():
    """The same detections stamped at 30, 24 and 60 frames a second, or as every other frame of a 30
    fps video, are filtered alike: the Kalman filter counts time in the stream's own frame interval
    (the median of the last intervals). It counted in 30ths of a second: at 24 or 60 fps no two
    frames were in a row, the noise was never measured, and held-out family scenes at 24 fps came
    out at 0.86x raw (0.72x now). A frame missing from the stream is still a gap."""
    rng = np.random.default_rng(8)
    n = 120
    spread = np.stack([np.linspace(0, 120, 13), np.linspace(200, 500, 13)], -1)  # a body-sized pose
    truth = (300 + 4 * np.arange(n) + 20 * np.sin(2 * np.pi * 0.5 * np.arange(n) / RATE))[:, None] + spread[:, 0]
    raw = truth + rng.normal(0, 3, (n, 13))

    def run(stamps):
        sm = OnlineSmoother()
        poses = np.stack([raw, np.broadcast_to(spread[:, 1], raw.shape)], -1)
        return np.array([sm.update(r, t).body.pose2d[0, :, 0] for r, t in zip(_bodies(poses), stamps)])

    at30 = run(np.arange(n) / 30.0)
    for stamps in (np.arange(n) / 24.0, np.arange(n) / 60.0, 2 * np.arange(n) / 30.0, 5.0 + np.arange(n) / 30.0):
        np.testing.assert_allclose(run(stamps), at30, atol=1e-3)
    assert np.abs(at30[30:] - truth[30:]).mean() < 0.8 * np.abs(raw[30:] - truth[30:]).mean()
    gap = np.r_[np.arange(60), np.arange(64, n + 4)] / 30.0  # four frames missing at 60
    assert np.abs(run(gap)[:60] - at30[:60]).max() < 1e-3 and np.abs(run(gap)[60:] - at30[60:]).max() > 1e-2


def test_online_follows_a_track_that_jumps_and_never_runs_away():
    """An id that moves to someone else 500 px away: the filter starts afresh there rather than
    creeping towards it (innovations clipped frame after frame used to let it run away)."""
    rng = np.random.default_rng(4)
    sm = OnlineSmoother()
    xs = [300 + 3 * k for k in range(40)] + [900.0] * 40
    out = [sm.update(tracked([[x + rng.normal(0, 2), 200]])).body.pose2d[0, 0, 0] for x in xs]
    assert abs(out[41] - 900) < 20 and max(abs(o - 900) for o in out[42:]) < 10


def test_gap_weights_are_a_linear_fill_then_the_local_fit():
    """The weights of frames with gaps, all signals at once, against the fit written out: gaps of
    at most max_gap filled by linear interpolation, a longer gap ending the span, then the local
    quadratic fit at the middle frame."""
    sm = OfflineSmoother(window=10, max_gap=3)
    rng = np.random.default_rng(5)
    present = rng.random((300, 21)) < rng.uniform(0.2, 0.95, (300, 1))
    present[:, 10] = True
    got = sm._gaps_weights(present)
    for row, weights in zip(present, got):
        pos = np.flatnonzero(row)
        centre = int(np.searchsorted(pos, 10))
        lo = centre
        while lo > 0 and pos[lo] - pos[lo - 1] <= 4:
            lo -= 1
        hi = centre
        while hi < len(pos) - 1 and pos[hi + 1] - pos[hi] <= 4:
            hi += 1
        span = pos[lo:hi + 1]
        grid = np.arange(span[0], span[-1] + 1)
        fill = np.stack([np.interp(grid, span, np.eye(len(span))[k]) for k in range(len(span))], 1)
        want = np.zeros(21)
        want[span] = local_fit_weights(10 - span[0], span[-1] - 10, sm.sigma, 2) @ fill
        np.testing.assert_allclose(weights, want, atol=1e-12)


def _offline_error(truth, raw, **params):
    out = [r.body.pose2d[0, 0, 0] for r in OfflineSmoother(**params).run([tracked([[x, 200]]) for x in raw])]
    return np.abs(np.array(out) - truth).mean()


def test_offline_narrows_its_fit_only_where_the_motion_outruns_it():
    """A precise, fast signal (a hand waving at 2.5 Hz, 0.3 px of noise): the default fit (4
    frames) would cost accuracy, the adaptive one narrows and stays near the samples. Slow, noisy
    walks: the default fit is kept (a pose's centre may take a narrower fit for a few frames,
    `_fit_centres`: over five walks, in under 5% of the frames and within 3% of the error)."""
    rng = np.random.default_rng(6)
    k = np.arange(240)
    fast = 400 + 40 * np.sin(2 * np.pi * 2.5 * k / RATE) + 15 * np.sin(2 * np.pi * 1.1 * k / RATE + 1)
    raw = fast + rng.normal(0, 0.3, len(k))
    raw_err = np.abs(raw - fast).mean()
    assert _offline_error(fast, raw, adaptive=False) > 1.5 * raw_err  # the default fit cannot follow
    assert _offline_error(fast, raw) < 1.1 * raw_err
    slow = 300 + 4 * k + 20 * np.sin(2 * np.pi * 0.5 * k / RATE)
    changed, ratio = [], []
    for seed in range(5):
        noisy = slow + np.random.default_rng(seed).normal(0, 3, len(k))
        a = np.array([r.body.pose2d for r in OfflineSmoother().run([tracked([[x, 200]]) for x in noisy])])
        b = np.array([r.body.pose2d for r in OfflineSmoother(adaptive=False).run([tracked([[x, 200]]) for x in noisy])])
        changed.append((a != b).any(axis=(1, 2, 3)).mean())
        ratio.append(np.abs(a[:, 0, 0, 0] - slow).mean() / np.abs(b[:, 0, 0, 0] - slow).mean())
    assert np.mean(changed) < 0.05 and np.mean(ratio) < 1.03, (changed, ratio)


def test_a_pose_whose_centre_moves_fast_gets_a_narrower_fit_for_its_centre_alone():
    """A signing hand: its 21 joints move together, fast (the centre: 2 Hz, 25 px), each with 2 px
    of noise of its own, while its shape hardly changes. The default fit lags the centre; the
    noise measured on third differences counts that motion as noise, so the whole pose is not
    narrowed; the centre, scored on its left-out samples, takes a narrower fit, and the shape keeps
    the default one: closer to the truth than the detections and than the default fit."""
    rng = np.random.default_rng(3)
    frames = 240
    t = np.arange(frames) / RATE
    centre = np.stack([600 + 25 * np.sin(2 * np.pi * 2.0 * t), 300 + 15 * np.sin(2 * np.pi * 1.3 * t + 1)], -1)
    shape = rng.normal(0, 20, (21, 2))
    truth = centre[:, None] + shape[None]  # float[T, 21, 2]
    raw = truth + rng.normal(0, 2.0, truth.shape)

    def hands(poses):
        return [Result(720, 1280, hand=PartArrays("hand", [0.9], p[None], np.zeros((1, 21, 3)), is_right=[True],
                                                  track=np.array([0]))) for p in poses]

    def error(**params):
        out = np.array([r.hand.pose2d[0] for r in OfflineSmoother(**params).run(hands(raw))])
        return np.linalg.norm(out - truth, axis=-1)[20:-20].mean()

    raw_err = np.linalg.norm(raw - truth, axis=-1)[20:-20].mean()
    plain = error(adaptive=False)
    adaptive = error()
    assert adaptive < 0.8 * plain and adaptive < 0.7 * raw_err, (adaptive, plain, raw_err)


def test_ranges_and_weighted_sums():
    """The offline smoother's helpers: runs of indexes, and each row's weighted sum over the window."""
    from dope.motion.smoothing import _weighted
    from dope.motion.neighbours import ranges as _ranges
    np.testing.assert_array_equal(_ranges(np.array([5, 0, 9]), np.array([2, 3, 1])), [5, 6, 0, 1, 2, 9])
    assert _ranges(np.array([], np.int64), np.array([], np.int64)).size == 0
    rng = np.random.default_rng(1)
    w, y = rng.random((6, 9)), rng.random((9, 6, 5))
    np.testing.assert_allclose(_weighted(w, y), np.einsum("rs,src->rc", w, y), rtol=1e-12)


def test_slot_sum_is_the_sum_of_the_weighted_slots():
    """The offline fit's sum over the window's slots (one einsum call) equals the slot-by-slot sum."""
    from dope.motion.smoothing import _slot_sum
    rng = np.random.default_rng(2)
    window = rng.random((21, 1000, 5)).astype(np.float32)
    weights = rng.normal(0, 1, 21).astype(np.float32)
    expected = sum(weights[k] * window[k].astype(np.float64) for k in range(21))
    got = _slot_sum(weights, window)
    assert got.dtype == np.float32 and got.shape == (1000, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_the_same_numbers_whether_a_frame_s_rows_are_one_block_or_scattered(mode):
    """Where a frame's signals sit in one run of the state's rows (a crowd seen frame after frame),
    the smoothers read and write that block in place; where the detections come in another order,
    they gather and scatter rows. Each person's smoothed pose is the same either way."""
    from dope.motion.smoothing import _Signals
    rng = np.random.default_rng(4)
    people, frames = 6, 30
    walk = rng.normal(0, 2, (frames, people, 2)).cumsum(0) + np.arange(people)[None, :, None] * 150 + 100
    def run(order_of):
        smoother = OnlineSmoother() if mode == "online" else OfflineSmoother()
        orders = [order_of(t) for t in range(frames)]
        results = [tracked(walk[t][order], tracks=order) for t, order in enumerate(orders)]
        out = list(smoother.run(results))
        return np.stack([r.body.pose2d[np.argsort(r.body.track)] for r in out]), smoother
    blocks = []
    real = _Signals.frame
    def frame(self, keys):
        layout = real(self, keys)
        blocks.append(isinstance(layout.block, slice))
        return layout
    import dope.motion.smoothing as smoothing_module
    smoothing_module._Signals.frame = frame
    try:
        same, _ = run(lambda t: list(range(people)))
        in_block = list(blocks)
        blocks.clear()
        shuffled, _ = run(lambda t: list(rng.permutation(people)) if t else list(range(people)))
        scattered = list(blocks)
    finally:
        smoothing_module._Signals.frame = real
    assert all(in_block) and not all(scattered[1:])
    np.testing.assert_array_equal(same, shuffled)


@pytest.mark.parametrize("scattered", [False, True])
def test_the_online_filter_gives_the_same_numbers_in_passes_of_a_few_rows(monkeypatch, scattered):
    """A crowd's rows are filtered KALMAN_ROWS at a time (smoothing.py); each row's filter is its
    own, so passes of any size give the same numbers, bit for bit, as one pass: here with people
    coming into view and leaving (passes where some rows have a short run and others not) and,
    scattered, with the detections in a new order every frame (rows gathered, not one block)."""
    import dope.motion.smoothing as smoothing_module
    rng = np.random.default_rng(7)
    people, frames = 9, 40
    speed = rng.normal(0, 0.7, (frames, people, 2)).cumsum(0)  # smooth paths: the damping's statistics matter
    walk = speed.cumsum(0) + rng.normal(0, 1.5, speed.shape) + np.arange(people)[None, :, None] * 120 + 80
    present = [[i for i in range(people) if not (i % 3 == 1 and 12 <= t < 16 + i) and (i < 7 or t >= 5)]
               for t in range(frames)]
    orders = [list(rng.permutation(p)) if scattered and t else p for t, p in enumerate(present)]
    results = [tracked(walk[t][order], tracks=order) for t, order in enumerate(orders)]
    def run(rows):
        monkeypatch.setattr(smoothing_module, "KALMAN_ROWS", rows)
        return [r.body.pose2d[np.argsort(r.body.track)] for r in OnlineSmoother().run(results)]
    whole = run(10 ** 9)
    for rows in (1, 5, 13, 50):
        for a, b in zip(whole, run(rows)):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(whole[-1], results[-1].body.pose2d[np.argsort(results[-1].body.track)])  # smoothed


def test_new_signals_take_freed_blocks_first_then_fresh_rows_in_one_run():
    """A frame's new keys get signals all at once: freed blocks of their size first (the last freed
    first), then fresh blocks, one after the other in the keys' order; known keys keep theirs."""
    from dope.motion.smoothing import _Signals
    store = _Signals({"x": (None, 5)}, {"t": ((), np.float64, -1.0)})
    first = store.frame({"body": [("b", 0), ("b", 1), ("b", 2)], "hand": [], "face": []})
    assert first.signals.tolist() == [0, 1, 2] and first.block == slice(0, 39)
    assert store.start[:3].tolist() == [0, 13, 26] and store.n_rows == 39
    store.values["t"][1] = 5.0
    store.free([1, 0])
    assert store.values["t"][1] == -1.0  # (a freed signal's values back to their start)
    layout = store.frame({"body": [("b", 2), ("b", 7), ("b", 8), ("b", 9)], "hand": [("h", 3)], "face": []})
    assert layout.signals.tolist() == [2, 0, 1, 3, 4]  # 0 freed last: reused first
    assert store.start[[3, 4]].tolist() == [39, 52] and store.length[[3, 4]].tolist() == [13, 21]
    assert store.n_rows == 73 and store.rows["x"].shape[0] >= 73
    assert [store.key_of[s] for s in layout.signals] == [("b", 2), ("b", 7), ("b", 8), ("b", 9), ("h", 3)]
    assert store.live[:5].all() and store.index[("b", 8)] == 1
    again = store.frame({"body": [("b", 2), ("b", 7), ("b", 8), ("b", 9)], "hand": [("h", 3)], "face": []})
    assert again.signals.tolist() == layout.signals.tolist()


def test_most_common_row():
    from dope.motion.smoothing import _most_common_row
    a = np.array([[1, 2, 3], [0, 0, 1], [1, 2, 3], [0, 0, 1], [0, 0, 1]], np.float32)
    np.testing.assert_array_equal(_most_common_row(a), [0, 0, 1])
    np.testing.assert_array_equal(_most_common_row(a[:1]), [1, 2, 3])


def test_offline_fit_is_the_same_for_shared_and_own_weights():
    """A clip shorter than the window: the signals that have every frame share one kernel (one
    product over all rows); one with a gap has its own. Both give the local fit of their samples."""
    from dope.motion.smoothing import local_fit_weights
    rng = np.random.default_rng(3)
    walk = rng.normal(0, 1, (8, 13, 2)).cumsum(0) * 5 + 300
    results = []
    for t in range(8):
        poses = [walk[t] + 200 * k for k in range(6) if not (k == 0 and t == 4)]  # track 0 missed in frame 4
        tracks = [k for k in range(6) if not (k == 0 and t == 4)]
        results.append(Result(720, 1280, body=PartArrays("body", [0.9] * len(poses), np.stack(poses),
                                                           np.zeros((len(poses), 13, 3)), track=np.array(tracks))))
    out = list(OfflineSmoother(sigma=3.0, adaptive=False).run(results))
    # tracks 1 to 5, seen in all 8 frames: frame 3's fit weighs frames 0..7 with local_fit_weights(3, 4)
    weights = local_fit_weights(3, 4, 3.0, 2)
    for k in range(1, 6):
        got = out[3].body.pose2d[list(out[3].body.track).index(k)]
        np.testing.assert_allclose(got, np.tensordot(weights, walk + 200 * k, (0, 0)), atol=2e-3)
    # track 0's fit at frame 3 leaves frame 4 out and differs from the others' (its own weights)
    got0 = out[3].body.pose2d[list(out[3].body.track).index(0)]
    assert np.abs(got0 - np.tensordot(weights, walk, (0, 0))).max() > 1e-3


def _hands(poses):
    return [Result(720, 1280, hand=PartArrays("hand", [0.9], p[None], np.zeros((1, 21, 3)), is_right=[True],
                                              track=np.array([0]))) for p in poses]


def _swinging_at_15_fps(seed, together, gross):
    """(truth, detections): a body's 13 joints swinging at 1.5 Hz over 30 px, seen at 15 fps (a
    swing in 10 frames), each joint with its own phase and reach, or all together (`together`: the
    pose moves as a whole); 1 px of noise, and a gross error (40 px, a joint far off) on `gross`
    of the joints."""
    rng = np.random.default_rng(seed)
    k = np.arange(240)[:, None]
    phase = np.zeros(13) if together else rng.uniform(0, 2 * np.pi, 13)
    reach = 30 * (np.ones(13) if together else rng.uniform(0.3, 1.0, 13))
    truth = np.stack([400 + np.linspace(0, 120, 13) + reach * np.sin(2 * np.pi * 0.1 * k + phase),
                      300 + 0.5 * reach * np.cos(2 * np.pi * 0.08 * k + phase + 1)], -1)
    raw = truth + rng.normal(0, 1.0, truth.shape)
    bad = rng.random(truth.shape[:2]) < gross
    raw[bad] += rng.normal(0, 40, (bad.sum(), 2))
    return truth, raw


def test_rare_gross_errors_do_not_hide_a_fit_that_cannot_follow_fast_limbs(monkeypatch):
    """Limbs swinging in 10 frames (a dancer at 15 fps), each on its own, with 1 px of noise and a
    gross error on 3% of the joints: those errors make the noise's plain variance about 50 times
    what most frames have, so the default fit's lag (3.2-3.8x the detections' error on these
    seeds) looked like noise and no narrower fit was tried. The bias check's noise leaves gross
    errors out (fourth differences clipped at 3 times their median's spread): 0.79-1.03x."""
    error = lambda truth, out: np.linalg.norm(np.array([r.body.pose2d[0] for r in out]) - truth, axis=-1).mean()
    ratios = []
    for seed in range(3):
        truth, raw = _swinging_at_15_fps(seed, together=False, gross=0.03)
        ratios.append(error(truth, OfflineSmoother().run(_bodies(raw))) / np.linalg.norm(raw - truth, axis=-1).mean())
    assert np.mean(ratios) < 1.0, ratios
    monkeypatch.setattr(OfflineSmoother, "CLIP", 1e9)  # the plain mean square: the lag stays hidden
    truth, raw = _swinging_at_15_fps(0, together=False, gross=0.03)
    assert error(truth, OfflineSmoother().run(_bodies(raw))) > 2 * np.linalg.norm(raw - truth, axis=-1).mean()


def test_a_pose_moving_fast_as_a_whole_keeps_its_centre_s_fit_against_narrower_ones():
    """The same swing with every joint together, and gross errors on 5% of the joints: the default
    fit lags, but with its centre's fit (`_fit_centres`) it follows the pose and spreads no gross
    error. Narrower fits now compete with that one: when they competed with the default fit
    alone, they won, passed the gross errors through and took the centre's fit away (0.93-0.99x
    the detections' error on these seeds, against 0.49-0.60x)."""
    for seed in range(2):
        truth, raw = _swinging_at_15_fps(seed, together=True, gross=0.05)
        out = np.array([r.body.pose2d[0] for r in OfflineSmoother().run(_bodies(raw))])
        assert np.linalg.norm(out - truth, axis=-1).mean() < 0.7 * np.linalg.norm(raw - truth, axis=-1).mean()


def test_a_hand_faster_than_the_frame_rate_gets_its_detections_back(monkeypatch):
    """A hand spinning on a circle of 120 px, 150 degrees a frame (faster than the frame rate can
    show: consecutive samples jump 230 px), detected within half a pixel. No fit of a few frames
    follows it, and the noise measured on its differences is as large as its motion: both
    smoothers made it 20-100x worse than the detections. The guard (GUARD) gives the detections
    back: within 1.2x of them after the first frames, online and offline."""
    rng = np.random.default_rng(4)
    frames = 120
    angle = np.radians(150) * np.arange(frames)
    centre = np.stack([600 + 120 * np.cos(angle), 360 + 120 * np.sin(angle)], -1)
    truth = centre[:, None] + rng.normal(0, 20, (21, 2))[None]
    raw = truth + rng.normal(0, 0.5, truth.shape)
    error = lambda out: np.linalg.norm(np.array([r.hand.pose2d[0] for r in out]) - truth, axis=-1)[20:].mean()
    raw_err = np.linalg.norm(raw - truth, axis=-1)[20:].mean()
    assert error(OfflineSmoother().run(_hands(raw))) < 1.2 * raw_err
    assert error(OnlineSmoother().run(_hands(raw))) < 1.2 * raw_err
    assert error(OnlineSmoother(guard=0).run(_hands(raw))) > 5 * raw_err
    monkeypatch.setattr(OfflineSmoother, "GUARD", 0)
    assert error(OfflineSmoother().run(_hands(raw))) > 5 * raw_err


def test_the_guard_leaves_an_isolated_bad_detection_smoothed(monkeypatch):
    """A hand moving slowly with 2 px of noise, and a detection 3 hand sizes off every 25 frames:
    the fit misses that sample in a frame, not in most of the last ones, so the guard gives back
    nothing: the same output as without it, online and offline."""
    rng = np.random.default_rng(8)
    frames = 100
    centre = np.stack([400 + 2.0 * np.arange(frames), np.full(frames, 300.0)], -1)
    raw = centre[:, None] + rng.normal(0, 20, (21, 2))[None] + rng.normal(0, 2.0, (frames, 21, 2))
    raw[10::25] += 200.0
    poses = lambda out: np.array([r.hand.pose2d[0] for r in out])
    online, offline = poses(OnlineSmoother().run(_hands(raw))), poses(OfflineSmoother().run(_hands(raw)))
    assert np.array_equal(online, poses(OnlineSmoother(guard=0).run(_hands(raw))))
    monkeypatch.setattr(OfflineSmoother, "GUARD", 0)
    assert np.array_equal(offline, poses(OfflineSmoother().run(_hands(raw))))


def test_online_damping_steadies_a_swinging_limb_and_leaves_a_steady_walk():
    """Limbs swinging at 1 Hz, 10 px, under 4 px of noise: the speed a constant-velocity filter
    carries into its prediction turns back within a few frames; damped half way to what the
    signal's own steps say (`KalmanParams.damping`), the jitter (acceleration error) falls by over
    10%, the position error within 5% of the undamped filter's. A body walking at a steady 3 px a
    frame is not made worse (its steps follow its speed; the noise in the speed the filter
    estimates is damped too: in fact its error falls)."""
    n = 300
    walk = np.zeros((n, 1, 2))
    walk[:, 0, 0] = 3.0 * np.arange(n)

    def run(truth, **params):
        raw = truth + np.random.default_rng(6).normal(0, 4.0, truth.shape)
        sm = OnlineSmoother(**params)
        out = np.array([sm.update(Result(720, 1280, body=PartArrays("body", [0.9], p[None], np.zeros((1, 13, 3)),
                                                                      track=[0]))).body.pose2d[0] for p in raw])
        error = np.linalg.norm(out - truth, axis=-1)[60:].mean()
        jitter = np.linalg.norm(np.diff(out, 2, axis=0) - np.diff(truth, 2, axis=0), axis=-1)[60:].mean()
        return error, jitter

    swinging = np.array([400.0, 200.0]) + _swinging_body(n, 10, 1.0)
    (err, jit), (err0, jit0) = run(swinging), run(swinging, damping=0)
    assert jit < 0.9 * jit0 and err < 1.05 * err0, (err, jit, err0, jit0)
    walking = np.array([100.0, 200.0]) + _swinging_body(n, 0, 1.0) + walk
    (err, _), (err0, _) = run(walking), run(walking, damping=0)
    assert err < 1.02 * err0, (err, err0)
    with pytest.raises(ValueError, match="KalmanParams"):
        OnlineSmoother(damping=1.5)


def _walking_body(frames, noise, seed):
    """Truth and detections (Results) of one body walking 3 px a frame, its 13 joints spread about it."""
    rng = np.random.default_rng(seed)
    truth = np.array([400.0, 300.0]) + rng.uniform(-60, 60, (13, 2))[None] \
        + np.stack([3.0 * np.arange(frames), np.zeros(frames)], -1)[:, None]
    return truth, truth + rng.normal(0, noise, truth.shape)


def _bodies(poses):
    return [Result(720, 1280, body=PartArrays("body", [0.9], p[None], np.zeros((1, 13, 3)), track=np.zeros(1, np.int64)))
            for p in poses]


def test_a_joint_s_glitch_in_one_frame_is_pulled_back_before_the_offline_fit():
    """A detector's bad joint in one frame (a wrist 50 px off, in frames 12 and 60 of a walk with 1
    px of noise): without the glitch check the fit spreads it into the frames about it; with it,
    the sample is pulled back to 2.5 times the joint's usual distance from its neighbours' cubic,
    and that joint's error there stays near the noise's; the other joints are smoothed as before."""
    glitches = [12, 60]
    near = [t + d for t in glitches for d in (-3, -2, -1, 1, 2, 3)]
    others = np.delete(np.arange(13), 7)
    for seed in range(3):
        truth, raw = _walking_body(100, 1.0, seed)
        raw[glitches, 7] += 50.0
        err = {}
        for glitch in (2.5, 0):
            out = np.array([r.body.pose2d[0] for r in OfflineSmoother(glitch=glitch).run(_bodies(raw))])
            err[glitch] = np.linalg.norm(out - truth, axis=-1)
        assert err[2.5][glitches, 7].max() < 2.0 and err[2.5][near, 7].mean() < 1.5
        assert err[0][near, 7].mean() > 4.0  # (what the check prevents)
        assert err[2.5][:, others].mean() < 1.02 * err[0][:, others].mean()
    with pytest.raises(ValueError):
        OfflineSmoother(glitch=-1)


def test_only_the_glitch_is_pulled_back_and_fits_made_before_it_was_judged_move_little():
    """A nearly noise-free walk (0.05 px) with the same glitches: the smoothed poses are those of
    the walk without them (a glitch is pulled back to within a few tenths of a pixel of the line
    its neighbours lie on: the fits move by under 0.15 px; a neighbour taken for a glitch would
    have been pulled tens of pixels towards a cubic through it), but in the three frames whose
    fits were made before the glitch was judged (`window` - 2 to `window` frames before it),
    where it had a small weight: under 2% of it."""
    glitches, window = [12, 60], 10
    early = [t - window + k for t in glitches for k in (0, 1, 2)]
    for seed in range(3):
        truth, _ = _walking_body(100, 0.0, seed)
        clean = truth + np.random.default_rng(seed).normal(0, 0.05, truth.shape)
        bad = clean.copy()
        bad[glitches, 7] += 50.0
        a, b = (np.array([r.body.pose2d[0] for r in OfflineSmoother(window=window).run(_bodies(x))]) for x in (bad, clean))
        diff = np.abs(a - b).max(axis=(1, 2))
        assert np.delete(diff, early).max() < 0.15 and diff[early].max() < 1.0, diff


# A standing person's body (13 joints over 120 x 300 px) and face (84 landmarks, 40 x 50 px)
_STANDING = (np.stack([np.linspace(0, 120, 13), np.linspace(0, 300, 13)], -1) + np.array([400.0, 200.0]),
             np.stack([np.tile(np.linspace(0, 40, 12), 7), np.repeat(np.linspace(0, 50, 7), 12)], -1) + [440.0, 150.0])


def _person(body, face):
    """A Result of one tracked person: body float[13, 2] and its attached face float[84, 2]."""
    return Result(720, 1280, body=PartArrays("body", [0.9], body[None], np.zeros((1, 13, 3)), track=[0], face=[0]),
                  face=PartArrays("face", [0.9], face[None], np.zeros((1, 84, 3)), track=[0]))


def test_online_follows_a_shaking_camera_that_a_person_s_parts_share():
    """A person filmed by a shaking hand: body and face jump together by about 10 px from frame to
    frame (the truth), the body's joints err by 2 px each, the face's landmarks by 1 px. A centre's
    second differences alone look like noise, and the filter smoothed the shake away: several times
    farther from the truth than the detections. The joints say the detector is far more precise,
    and body and face share the jitter: with each centre's noise bounded by its joints'
    (`KalmanParams.centre_noise`) where its person's other part shares its jitter
    (`shared_motion`), the filter follows the shake. Where the detector errs on each detection
    as a whole instead (body and face each off by 2 px a frame, on their own), the parts share
    nothing and are smoothed as well as without the bound."""
    n, rng = 300, np.random.default_rng(8)
    body, face = _STANDING
    shake = np.cumsum(rng.normal(0, 1, (n, 2)), 0) * 0.3 + rng.normal(0, 10, (n, 2))
    truth_b, truth_f = body + shake[:, None], face + shake[:, None]
    raw_b, raw_f = truth_b + rng.normal(0, 2, truth_b.shape), truth_f + rng.normal(0, 1, truth_f.shape)

    def error(raw_b, raw_f, truth_b, truth_f, **params):
        sm = OnlineSmoother(**params)
        out = [sm.update(_person(b, f)) for b, f in zip(raw_b, raw_f)]
        ratio = lambda got, raw, truth: (np.linalg.norm(got - truth, axis=-1)[30:].mean()
                                         / np.linalg.norm(raw - truth, axis=-1)[30:].mean())
        return (ratio(np.array([r.body.pose2d[0] for r in out]), raw_b, truth_b),
                ratio(np.array([r.face.pose2d[0] for r in out]), raw_f, truth_f))

    bounded, unbounded = error(raw_b, raw_f, truth_b, truth_f), error(raw_b, raw_f, truth_b, truth_f, centre_noise=np.inf)
    assert max(bounded) < 1.5 and min(unbounded) > 3, (bounded, unbounded)
    still_b, still_f = np.broadcast_to(body, (n, 13, 2)), np.broadcast_to(face, (n, 84, 2))
    boxed_b = still_b + rng.normal(0, 2, (n, 1, 2)) + rng.normal(0, 2, (n, 13, 2))
    boxed_f = still_f + rng.normal(0, 2, (n, 1, 2)) + rng.normal(0, 1, (n, 84, 2))
    smoothed, before = error(boxed_b, boxed_f, still_b, still_f), error(boxed_b, boxed_f, still_b, still_f, centre_noise=np.inf)
    assert max(smoothed) < 0.6 and all(a < 1.05 * b for a, b in zip(smoothed, before)), (smoothed, before)
    for bad in ({"centre_noise": -1}, {"shared_motion": 1.5}):
        with pytest.raises(ValueError, match="KalmanParams"):
            OnlineSmoother(**bad)


def test_offline_gives_a_centre_its_own_sample_where_a_person_s_parts_jitter_together(monkeypatch):
    """The shaking person above, offline: no fit over a few frames follows a white 10 px shake,
    and the noise measured on the centre's own differences counts it as noise, so the fits
    smoothed it away. Where body and face share the jitter, a centre whose joints say it is
    precise takes its own sample (`OfflineSmoother._own_samples`); the independent box shifts
    are smoothed as before, to the bit."""
    n, rng = 200, np.random.default_rng(8)
    body, face = _STANDING
    shake = rng.normal(0, 10, (n, 2))
    truth_b, truth_f = body + shake[:, None], face + shake[:, None]
    raw_b, raw_f = truth_b + rng.normal(0, 2, truth_b.shape), truth_f + rng.normal(0, 0.5, truth_f.shape)
    boxed_b = body + rng.normal(0, 2, (n, 1, 2)) + rng.normal(0, 2, (n, 13, 2))
    boxed_f = face + rng.normal(0, 2, (n, 1, 2)) + rng.normal(0, 0.5, (n, 84, 2))

    def run(raw_b, raw_f):
        out = list(OfflineSmoother().run(_person(b, f) for b, f in zip(raw_b, raw_f)))
        return np.array([r.body.pose2d[0] for r in out]), np.array([r.face.pose2d[0] for r in out])

    ratio = lambda got, raw, truth: (np.linalg.norm(got - truth, axis=-1)[40:-20].mean()
                                     / np.linalg.norm(raw - truth, axis=-1)[40:-20].mean())
    own_b, own_f = run(raw_b, raw_f)
    boxed = run(boxed_b, boxed_f)
    monkeypatch.setattr(OfflineSmoother, "SHARED_MOTION", np.inf)  # never
    fit_b, fit_f = run(raw_b, raw_f)
    assert ratio(own_f, raw_f, truth_f) < 1.0 and ratio(fit_f, raw_f, truth_f) > 3, \
        (ratio(own_f, raw_f, truth_f), ratio(fit_f, raw_f, truth_f))
    assert ratio(own_b, raw_b, truth_b) < ratio(fit_b, raw_b, truth_b), (ratio(own_b, raw_b, truth_b), ratio(fit_b, raw_b, truth_b))
    np.testing.assert_array_equal(boxed[0], run(boxed_b, boxed_f)[0])
    np.testing.assert_array_equal(boxed[1], run(boxed_b, boxed_f)[1])


def test_offline_takes_a_bouncing_person_s_noise_from_the_joints_offsets(monkeypatch):
    """A runner seen from the side: body and face bounce together by 12 px at each stride (5.5
    frames) while moving 6 px a frame, and the face nods with it (0.1 rad); the body's joints err by
    3 px, the face's landmarks by 0.3 px. The face's third differences are mostly the bounce, and
    as noise they made every narrower fit of the face look risky: it came out 1.7 times farther
    from the truth than its detections. Where the parts move together, a joint's noise is taken as
    at most what the offsets from its centre show, plus a shared error as large
    (`OfflineSmoother._noise_bound`): the face is then never worse than its detections."""
    n = 120
    body = np.stack([np.linspace(0, 40, 13), np.linspace(0, 150, 13)], -1) + [200.0, 200.0]
    face = np.stack([np.tile(np.linspace(0, 20, 12), 7), np.repeat(np.linspace(0, 25, 7), 12)], -1) + [210.0, 180.0]
    t = np.arange(n)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        move = np.stack([6.0 * t, 12 * np.sin(2 * np.pi * t / 5.5 + rng.uniform(0, 6))], -1)
        angle = 0.1 * np.sin(2 * np.pi * t / 5.5 + 1.0)
        turn = np.stack([np.stack([np.cos(angle), -np.sin(angle)], -1), np.stack([np.sin(angle), np.cos(angle)], -1)], -2)
        centre = face.mean(0)
        truth_b = body + move[:, None]
        truth_f = centre + np.einsum("tij,kj->tki", turn, face - centre) + move[:, None]
        raw_b, raw_f = truth_b + rng.normal(0, 3, truth_b.shape), truth_f + rng.normal(0, 0.3, truth_f.shape)

        def face_ratio() -> float:
            out = np.array([r.face.pose2d[0] for r in OfflineSmoother().run(_person(b, f) for b, f in zip(raw_b, raw_f))])
            return (np.linalg.norm(out - truth_f, axis=-1)[20:-20].mean()
                    / np.linalg.norm(raw_f - truth_f, axis=-1)[20:-20].mean())

        bounded = face_ratio()
        with monkeypatch.context() as m:
            m.setattr(OfflineSmoother, "BOUND_NOISE", False)
            unbounded = face_ratio()
        assert bounded < 1.02 and unbounded > 1.4, (bounded, unbounded)
