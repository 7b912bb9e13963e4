"""Crowds at full speed (`python bench.py --crowd`): JSON Lines reading and writing, and whole replays.

A crowd clip is what the network with pseudo-random weights writes for a busy video: about 1,400
detections a frame (bodies, hands and faces scattered over the image, bodies linked to some hands
and faces, scores from 1e-5 to 3, coordinates of every magnitude), written by `--json`'s own
writer. `make_crowd` draws one from a seed, without the network.

Measured:

- JSON Lines alone, per frame: reading (parse, check, build the `Result`) and writing (what `--json`
  does: `JsonFrames`, `record_line`) with today's code, against a reference copy of the code before issue 33 (the
  standard library's `json`, a `Detection` object per detection), kept here only for the ratio;
  both produce the same bytes, checked on every run;
- whole replays in a subprocess, `dope.py --from-json clip.jsonl --json out.jsonl` with
  `--no-track` and with tracking (the default on video records: tracks and offline smoothing),
  per frame, and the tracked run's extra cost;
- tracking and smoothing alone, through `benchmarks.tracking.run_crowd` when that exists.
"""
from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Optional

import numpy as np

from dope.inputs.sources import Item
from dope.parts import PARTS
from dope.results import PartArrays, Result

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOPE_PY = os.path.join(HERE, "dope.py")
SHARES = {"body": 0.25, "hand": 0.25, "face": 0.50}  # of a frame's detections
EXTRA = {"model": "DOPE_v1_0_0", "postprocess": "ppi"}


def crowd_results(frames: int = 8, detections: int = 1400, width: int = 1920, height: int = 1080,
                  seed: int = 0, jitter: Optional[float] = None) -> list[tuple[Item, Result]]:
    """`frames` video frames (25 fps) of about `detections` detections each, drawn from `seed`: new
    ones every frame, or with `jitter` (pixels) the first frame's, each joint moved by that much
    (standard deviation; 3D: a 200th of it, metres) in every later frame, as a network gives on
    a video's nearby frames (then tracks hold, and the assignment and the smoothing have work)."""
    rng = np.random.default_rng(seed)
    out: list[tuple[Item, Result]] = []
    for t in range(frames):
        if jitter is not None and out:
            first = out[0][1]
            moved = {}
            for part in SHARES:
                a = getattr(first, part)
                moved[part] = PartArrays(part, **{**a.fields, "pose2d": a.pose2d + rng.normal(0, jitter, a.pose2d.shape),
                                                  "pose3d": a.pose3d + rng.normal(0, jitter / 200, a.pose3d.shape)})
            out.append((Item(t, "crowd.mp4", t, t / 25), Result(height, width, **moved)))
            continue
        parts: dict[str, dict[str, Any]] = {}
        for part, share in SHARES.items():
            n = int(rng.integers(int(0.9 * share * detections), int(1.1 * share * detections) + 1))
            j = PARTS[part].num_joints
            centre = rng.uniform((0, 0), (width, height), (n, 1, 2))
            size = rng.uniform(20, 400, (n, 1, 1))
            pose2d = centre + size * rng.normal(0, 0.5, (n, j, 2))  # some joints fall outside the image
            pose3d = rng.normal(0, 0.6 if part == "body" else 0.08, (n, j, 3))
            scores = np.sort(10 ** rng.uniform(-5, 0.5, n))[::-1]
            parts[part] = {"scores": scores, "pose2d": pose2d, "pose3d": pose3d}
            if part == "hand":
                parts[part]["is_right"] = rng.random(n) < 0.5
        nb, nh, nf = (len(parts[p]["scores"]) for p in ("body", "hand", "face"))
        for link, count in (("left_hand", nh), ("right_hand", nh), ("face", nf)):
            linked = rng.random(nb) < 0.4
            parts["body"][link] = np.where(linked, rng.integers(0, count, nb), -1)
        result = Result(height, width, **{p: PartArrays(p, **kw) for p, kw in parts.items()})
        out.append((Item(t, "crowd.mp4", t, t / 25), result))
    return out


def make_crowd(path: str, frames: int = 8, detections: int = 1400, seed: int = 0,
               jitter: Optional[float] = None) -> int:
    """Write a crowd clip as `--json` does (`crowd_results`); returns its size in bytes."""
    from dope.outputs.writers import JsonLinesWriter, record
    with JsonLinesWriter(path) as w:
        for item, result in crowd_results(frames, detections, seed=seed, jitter=jitter):
            w.write(record(item, result, **EXTRA))
    return os.path.getsize(path)


# ------------------------------------------------------------------------------------ the code before issue 33
# A reference copy of the JSON Lines path as it was (reading: json.loads, a check and a Detection per
# detection; writing: a Detection per detection, _finite over every number, json.dumps), for the ratio.


def _old_finite(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _old_finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_old_finite(v) for v in x]
    return x


def old_json_line(obj: dict[str, Any]) -> str:
    return json.dumps(_old_finite(obj), allow_nan=False) + "\n"


def old_to_dict(result: Result, decimals: int = 4) -> dict[str, Any]:
    from dope.results import PART_NAMES, _json_value
    d: dict[str, Any] = {"image": result.image, "height": result.height, "width": result.width}
    for p in PART_NAMES:
        d[p] = [det.to_dict(p, decimals) for det in result[p]]
    d.update({k: _json_value(v, decimals) for k, v in result.meta.items() if k not in d and not k.startswith("_")})
    return d


def old_record(item: Item, result: Result, saved: Optional[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    from dope.parts import PART_NAMES
    d = old_to_dict(result)
    if isinstance(saved, dict):  # _keep_saved_numbers
        for part in PART_NAMES:
            arr, before = result[part], saved.get(part) or []
            if len(before) != len(arr):
                continue
            for i, det in enumerate(before):
                for key, now in (("score", arr.scores[i]), ("pose2d", arr.pose2d[i]), ("pose3d", arr.pose3d[i])):
                    try:
                        same = np.array_equal(np.asarray(det[key], np.float32), now)
                    except (KeyError, TypeError, ValueError):
                        continue
                    if same:
                        d[part][i][key] = det[key]
    if item.frame is None:
        d["image"] = item.name if item.name is not None else d["image"]
    else:
        del d["image"]
        time_s = None if item.time_s is None else round(item.time_s, 4)
        d = {"video": item.name, "frame": item.frame, "time_s": time_s, **d}
    d.update(extra)
    return d


def old_from_dict(d: dict[str, Any]) -> Result:
    from dope.parts import PART_NAMES
    from dope.results import Detection
    known = {"score", "pose2d", "pose3d", "is_right", "left_hand", "right_hand", "face"}

    def det(part: str, x: dict[str, Any]) -> Detection:
        j = PARTS[part].num_joints
        kw = {k: x.get(k) for k in ("is_right", "left_hand", "right_hand", "face") if k in x}
        return Detection(score=float(x["score"]), pose2d=np.asarray(x["pose2d"], np.float32).reshape(j, 2),
                         pose3d=np.asarray(x["pose3d"], np.float32).reshape(j, 3),
                         extra={k: v for k, v in x.items() if k not in known}, **kw)
    return Result(height=d["height"], width=d["width"], image=d.get("image"),
                  **{p: [det(p, x) for x in d.get(p) or []] for p in PART_NAMES})


def old_read(path: str) -> list[tuple[Item, Result, dict[str, Any]]]:
    """Every record of a crowd file as the old reader made it (its shape checks included)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for index, line in enumerate(f):
            obj = json.loads(line)
            for part, j in ((p, PARTS[p].num_joints) for p in ("body", "hand", "face")):
                for d in obj.get(part) or []:
                    for key, dims in (("pose2d", 2), ("pose3d", 3)):
                        assert np.asarray(d[key], dtype=np.float64).shape == (j, dims)
            result = old_from_dict(obj)
            result.meta = {k: v for k, v in obj.items() if k not in ("video", "frame", "time_s", "height", "width",
                                                                      "body", "hand", "face")}
            out.append((Item(index, obj["video"], obj["frame"], obj["time_s"]), result, obj))
    return out


def new_read(path: str) -> list[tuple[Item, Result]]:
    from dope.inputs.replay import replay
    return list(replay(path))


def old_write(path: str, frames: list[tuple[Item, Result, dict[str, Any]]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for item, result, saved in frames:
            f.write(old_json_line(old_record(item, result, saved)))
            f.flush()


def new_write(path: str, frames: list[tuple[Item, Result]]) -> None:
    """What `--json` does with each frame (`JsonFrames`: `record_line`, then the line written and flushed)."""
    from dope.outputs.frames import JsonFrames
    from dope.stream import Frame
    writer = JsonFrames(path)
    for item, result in frames:
        writer.write(Frame(item, None, result))
    writer.close()


# ------------------------------------------------------------------------------------ measures


def _best(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """(the least CPU seconds of `runs` calls, this process's and its children's, the last call's value).
    CPU time, not wall-clock: the machines this runs on are shared, and a busy neighbour stretches
    wall-clock times several fold while CPU times move by a few percent."""
    best, value = math.inf, None
    for _ in range(runs):
        start = _cpu()
        value = fn()
        best = min(best, _cpu() - start)
    return best, value


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_json(path: str, runs: int = 3) -> dict[str, Any]:
    """CPU seconds per frame reading and writing `path`'s records, old and new code interleaved (the
    least of `runs` each), and whether both write the same bytes."""
    frames = sum(1 for _ in open(path, "rb"))
    out: dict[str, Any] = {"frames": frames, "bytes": os.path.getsize(path)}
    with tempfile.TemporaryDirectory() as folder:
        old_out, new_out = os.path.join(folder, "old.jsonl"), os.path.join(folder, "new.jsonl")
        times: dict[str, float] = {k: math.inf for k in ("read_old", "read_new", "write_old", "write_new")}
        for _ in range(runs):
            t, old_frames = _best(lambda: old_read(path), 1)
            times["read_old"] = min(times["read_old"], t)
            t, new_frames = _best(lambda: new_read(path), 1)
            times["read_new"] = min(times["read_new"], t)
            t, _ = _best(lambda: old_write(old_out, old_frames), 1)
            times["write_old"] = min(times["write_old"], t)
            t, _ = _best(lambda: new_write(new_out, new_frames), 1)
            times["write_new"] = min(times["write_new"], t)
            del old_frames, new_frames
        with open(old_out, "rb") as a, open(new_out, "rb") as b, open(path, "rb") as c:
            old_bytes, new_bytes, source = a.read(), b.read(), c.read()
        out["same_bytes"] = old_bytes == new_bytes
        out["replayed_as_read"] = new_bytes == source
    out.update({k: v / frames for k, v in times.items()})
    return out


def time_replays(path: str, runs: int = 1, track: bool = True, baseline: Optional[str] = None) -> dict[str, float]:
    """CPU seconds per frame of whole `dope.py --from-json path --json out.jsonl` runs (subprocesses, the
    least of `runs`, less the start-up: the same replay of a one-frame file without detections): with
    `--no-track` and with tracking (the default on video records), and the same with the `dope.py` of
    another checkout (`baseline`, e.g. the code before issue 33), interleaved."""
    frames = sum(1 for _ in open(path, "rb"))
    scripts = {"": DOPE_PY} if baseline is None else {"": DOPE_PY, "baseline_": os.path.join(baseline, "dope.py")}
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        empty = os.path.join(folder, "empty.jsonl")
        with open(empty, "w") as f:
            f.write(json.dumps({"video": "crowd.mp4", "frame": 0, "time_s": 0.0, "height": 1080, "width": 1920,
                                "body": [], "hand": [], "face": [], **EXTRA}) + "\n")

        def replay(script: str, source: str, flags: list[str]) -> Callable[[], Any]:
            command = [sys.executable, script, "--from-json", source, "--json", os.path.join(folder, "out.jsonl"),
                       "-q", *flags]
            return lambda: subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=folder)

        for _ in range(runs):
            for name, flags in (("no_track", ["--no-track"]), ("tracked", [])):
                if name == "tracked" and not track:
                    continue
                for prefix, script in scripts.items():
                    start_up, _ = _best(replay(script, empty, flags), 1)
                    t, _ = _best(replay(script, path, flags), 1)
                    key = prefix + name
                    out[key] = min(out.get(key, math.inf), (t - start_up) / frames)
                    out[key + "_whole"] = min(out.get(key + "_whole", math.inf), t / frames)
                    out[key + "_start_up"] = min(out.get(key + "_start_up", math.inf), start_up)
    return out


def tracking_per_frame(detections: int, frames: int) -> Optional[dict[str, float]]:
    """CPU ms per frame of tracking and smoothing alone on a crowd of about `detections` per frame, from
    the tracking benchmark (`benchmarks.tracking.run_crowd`, its own synthetic people), or None where
    that function is missing."""
    from benchmarks import tracking
    run_crowd = getattr(tracking, "run_crowd", None)
    if run_crowd is None:
        return None
    return run_crowd(None, detections_per_frame=detections, frames=frames, repeat=1)


def run_benchmark(frames: int = 8, detections: int = 1400, runs: int = 3, replays: int = 1, seed: int = 0,
                  folder: Optional[str] = None, baseline: Optional[str] = None) -> dict[str, Any]:
    """Everything `bench.py --crowd` prints, on a crowd clip made in `folder` (a temporary one by default)."""
    with tempfile.TemporaryDirectory() as temp:
        path = os.path.join(folder or temp, "crowd.jsonl")
        make_crowd(path, frames, detections, seed)
        first = json.loads(open(path, "rb").readline())
        summary: dict[str, Any] = {"detections": sum(len(first[p]) for p in SHARES)}
        summary["json"] = time_json(path, runs)
        summary["replay"] = time_replays(path, replays, baseline=baseline)
        # The same detections in every frame, a few pixels apart (tracks hold: the assignment and the
        # smoothing have work), as a random-weights network gives on a video's nearby frames.
        still = os.path.join(folder or temp, "crowd_still.jsonl")
        make_crowd(still, frames, detections, seed, jitter=STILL_JITTER)
        summary["replay_still"] = time_replays(still, replays, baseline=baseline)
        summary["tracking"] = tracking_per_frame(detections, frames)
        return summary


STILL_JITTER = 2.0  # pixels: the still clip's detections move this much from frame to frame


def replay_difference_report(detections: int, frames: int = 8, replays: int = 3) -> str:
    """What a user who times a tracked and a `--no-track` replay of a crowd sees (issue 33's
    measure: whole processes, start-ups and imports included), for `bench.py --tracking`: an
    in-process timing misses what the tracker imports (0.4-0.6 s of scipy went unseen that way)."""
    with tempfile.TemporaryDirectory() as temp:
        out = []
        for name, jitter in (("new detections every frame", None), (f"moved {STILL_JITTER:g} px a frame", STILL_JITTER)):
            path = os.path.join(temp, "crowd.jsonl")
            make_crowd(path, frames, detections, jitter=jitter)
            r = time_replays(path, replays)
            out.append(f"{name} {1e3 * (r['tracked_whole'] - r['no_track_whole']):.1f}")
    return (f"  whole replays of {frames} frames of about {detections} detections (dope.py --from-json, CPU, "
            f"least of {replays}), tracked minus --no-track, ms a frame: " + "; ".join(out))


def _replay_lines(r: dict[str, float], clip: str, frames: int) -> list[str]:
    """The report's lines on `time_replays`' figures for one clip."""
    ms = lambda x: f"{1e3 * x:8.1f}"  # noqa: E731
    lines = [f"Whole replays of {frames} frames, {clip}: dope.py --from-json crowd.jsonl --json out.jsonl "
             "(a subprocess each), CPU ms per frame, less each run's start-up (the same replay of one empty frame):"]
    for name, what in (("no_track", "--no-track"), ("tracked", "tracked")):
        if name not in r:
            continue
        line = f"  {what:<10}  {ms(r[name])}   start-up {r[name + '_start_up']:.2f} s"
        if "baseline_" + name in r:
            line += f"   baseline {ms(r['baseline_' + name])}   ratio {r['baseline_' + name] / r[name]:5.1f}x"
        lines.append(line)
    if "tracked" in r:
        lines.append(f"  tracked minus --no-track: {ms(r['tracked'] - r['no_track']).strip()} ms per frame "
                     "(tracks and offline smoothing)" + (f"; baseline {ms(r['baseline_tracked'] - r['baseline_no_track']).strip()}"
                                                        if "baseline_tracked" in r else ""))
        lines.append(f"  the same, start-ups included (as a user times two runs): "
                     f"{ms(r['tracked_whole'] - r['no_track_whole']).strip()} ms per frame; the start-ups' difference (imports) "
                     f"are {ms((r['tracked_start_up'] - r['no_track_start_up']) / frames).strip()} of it")
    return lines


def report(s: dict[str, Any]) -> str:
    j, r = s["json"], s["replay"]
    ms = lambda x: f"{1e3 * x:8.1f}"  # noqa: E731
    lines = [f"Crowd clip: {j['frames']} frames, {s['detections']} detections in the first, "
             f"{j['bytes'] / 1e6:.1f} MB of JSON Lines", "",
             "JSON Lines, CPU ms per frame (least of the runs, old and new interleaved in one process):",
             "               before (json)   now   ratio",
             f"  reading     {ms(j['read_old'])}  {ms(j['read_new'])}  {j['read_old'] / j['read_new']:5.1f}x",
             f"  writing     {ms(j['write_old'])}  {ms(j['write_new'])}  {j['write_old'] / j['write_new']:5.1f}x",
             f"  both        {ms(j['read_old'] + j['write_old'])}  {ms(j['read_new'] + j['write_new'])}  "
             f"{(j['read_old'] + j['write_old']) / (j['read_new'] + j['write_new']):5.1f}x",
             f"  same bytes as before: {'yes' if j['same_bytes'] else 'NO'}; a replay writes back the file it read: "
             f"{'yes' if j['replayed_as_read'] else 'NO'}", "",
             ]
    for r, clip in ((s["replay"], "new detections in every frame"),
                    (s.get("replay_still"), f"the first frame's detections in every frame, moved {STILL_JITTER:g} px")):
        if r is not None:
            lines += _replay_lines(r, clip, j["frames"]) + [""]
    t = s.get("tracking")
    if t is None:
        lines += ["", "Tracking and smoothing alone: benchmarks.tracking has no run_crowd"]
    else:
        lines += ["", f"Tracking and smoothing alone (benchmarks.tracking.run_crowd, {t['people']} people, "
                  f"{t['detections_per_frame']:.0f} detections a frame), CPU ms per frame: tracking "
                  f"{t['tracking_ms']:.1f}, with offline smoothing {t['offline_ms']:.1f}, with online smoothing "
                  f"{t['online_ms']:.1f}"]
    return "\n".join(lines)
