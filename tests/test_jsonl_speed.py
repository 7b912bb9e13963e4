"""JSON Lines at crowd speed (issue 33): the fast paths write and read exactly what the code before
them did. The references are copies of that code (benchmarks/crowd.py keeps them for its ratios, and
`jsonio.dumps_stdlib` is the old encoder); speed is measured by `bench.py --crowd`, not here."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks.crowd import crowd_results, old_from_dict, old_json_line, old_record, old_to_dict
from dope import jsonio
from dope.inputs.replay import ReplayError, SavedPart, read_records, replay
from dope.inputs.sources import Item
from dope.outputs.frames import JsonFrames
from dope.outputs.writers import json_line, record, record_line
from dope.stream import Frame
from dope.parts import PART_NAMES, PARTS
from dope.results import Detection, PartArrays, Result

pytestmark = pytest.mark.skipif(not jsonio.fast(), reason="orjson is not installed (the fallback is the reference)")

TRICKY_FLOATS = [0.0, -0.0, 1.0, -3.0, 0.1, 1e-4, 9.9999e-05, 1e-05, -5.5e-05, 3.2e-06, 1e-07, 2.5e-310, 5e-324,
                 123456.789, 1e15, 9999999999999998.0, 1e16, -1.5e16, 1e22, 1.7976931348623157e308, 1234.5678,
                 0.30000000000000004, float("nan"), float("inf"), -float("inf")]
STRINGS = ["photo.jpg", "vidéo ☃.mp4", "C:\\videos\\clip.mp4", "ends with \\", 'a "quoted" name', "a, b: c",
           "tab\there", "new\nline", "\x00\x1f\x7f", "\u2028\u2029", "😀 emoji", "", "/", "ÿ"]


def random_values(rng: np.random.Generator, n: int) -> list[float]:
    """Floats of every magnitude, rounded as the writers round them and not."""
    x = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-12, 18, n)
    return (x.tolist() + np.round(x, 4).tolist() + np.round(x, 6).tolist()
            + x.astype(np.float32).astype(np.float64).tolist())


def test_dumps_is_the_standard_librarys_text_byte_for_byte():
    rng = np.random.default_rng(0)
    values = random_values(rng, 5000) + TRICKY_FLOATS
    objects = [
        {"v": values, "pairs": [[v, -v] for v in values[:2000]]},
        {s: [s, 1, 1.0, True, None, [], {}] for s in STRINGS},
        {"image": "vidéo ☃.mp4", "height": 720, "width": 1280, "body": [{"score": float("nan"), "pose2d": [[1e-05, 2.0]],
                                                                           "track": -1, "left_hand": None}]},
        {"nested": [[[float("inf")], (1.5, -0.0)], {"deep": {"x": [float("-inf"), 2 ** 63 - 1, -(2 ** 63)]}}]},
        {"big": 2 ** 70, "neg": -(2 ** 65)},  # past 64 bits: orjson refuses, the standard library writes them
        {1: "int key", None: "none key", 2.5: "float key", True: "bool key"},  # keys json turns into strings
        {"numpy": np.float64(0.5), "f": np.float64("nan")},  # a float subclass
        {"finished": "crowd.mp4", "records": 8}, {"image": "x.jpg", "error": "cannot read: a, b"}, {}, [], "",
    ]
    for obj in objects:
        assert jsonio.dumps(obj) == jsonio.dumps_stdlib(obj), obj if len(str(obj)) < 300 else type(obj)
        assert json_line(obj) == old_json_line(obj)


def test_dumps_raises_what_the_standard_library_raises():
    for obj in ({"x": object()}, {"x": np.arange(3)}, {"x": {1, 2}}, {(1, 2): "tuple key"}):
        with pytest.raises(TypeError):
            jsonio.dumps_stdlib(obj)
        with pytest.raises(TypeError):
            jsonio.dumps(obj)
    loop: list = []
    loop.append(loop)
    for dumps in (jsonio.dumps_stdlib, jsonio.dumps):  # the old _finite recursed for ever on a loop
        with pytest.raises(RecursionError):
            dumps({"loop": loop})


def test_without_orjson_the_standard_library_writes_the_same(monkeypatch):
    obj = {"a": TRICKY_FLOATS, "b": STRINGS}
    poses = np.array([TRICKY_FLOATS] * 3).reshape(3, -1, 1)
    fast, fast_rows = jsonio.dumps(obj), jsonio.rows(poses)
    monkeypatch.setattr(jsonio, "orjson", None)
    clear_caches()
    try:
        assert not jsonio.fast() and not jsonio.fast_arrays()
        assert jsonio.dumps(obj) == fast
        assert str(jsonio.loads(fast)) == str(json.loads(fast))
        assert jsonio.rows(poses) == fast_rows
    finally:
        clear_caches()


def clear_caches():
    jsonio.fast.cache_clear()
    jsonio.fast_arrays.cache_clear()


def every_double(rng: np.random.Generator, n: int) -> np.ndarray:
    """n doubles of random bits (every exponent: subnormals, NaN and infinities too), then the
    writers' kinds of numbers: rounded to 4 and 6 decimals, float32 values, whole numbers, -0.0."""
    bits = np.frombuffer(rng.bytes(8 * n), np.float64)
    x = np.array(random_values(rng, n // 4))
    return np.concatenate([bits, x, np.round(rng.normal(0, 2000, n), 4), np.round(rng.normal(0, 0.1, n), 6),
                           np.trunc(rng.normal(0, 1e6, n // 10)), np.array(TRICKY_FLOATS), -np.array(TRICKY_FLOATS)])


def test_rows_write_every_double_as_the_standard_library():
    """jsonio.rows (orjson's text of a whole array, respelt) against json over millions of numbers."""
    rng = np.random.default_rng(7)
    values = every_double(rng, 500_000)  # about two million
    values = values[:len(values) // 6 * 6]
    assert jsonio.fast_arrays()
    for a in (values.reshape(-1, 3, 2), values[:60_000], values[:60_000].reshape(-1, 2, 1, 3)):
        rows = jsonio.rows(a)
        assert len(rows) == len(a)
        assert "[" + ", ".join(rows) + "]" == jsonio.dumps_stdlib(a.tolist())
    few = values[::997][:600].reshape(100, 3, 2)  # row by row, as records use them
    assert jsonio.rows(few) == [jsonio.dumps_stdlib(r) for r in few.tolist()]
    assert jsonio.rows(few[:, 0, 0].copy()) == [jsonio.dumps_stdlib(v) for v in few[:, 0, 0].tolist()]
    assert jsonio.rows(np.zeros((0, 4, 2))) == []
    for bad in (np.zeros((2, 3), np.float32), np.zeros((2, 0, 2)), np.float64(1.0)):
        with pytest.raises(ValueError):
            jsonio.rows(bad)


@pytest.mark.parametrize("text", [
    '{"a": [1, 1.0, -0, -0.0, 1e5, 1E-7, 2.5e-310, 123456789012345678901234567890, true, null, "é\\u00e9\\ud83d\\ude00"]}',
    '{"nan": NaN, "inf": [Infinity, -Infinity]}',  # not JSON, but json reads them: so does a replay
    '[1, 2]', '"text"', '{"dup": 1, "dup": 2}', '  {"spaces": 1}  ', '[1e400, -1e400, 1.5e-400]',
    '[9223372036854775807, 9223372036854775808, -9223372036854775809, 18446744073709551616, 0.12345678901234567890123]',
    '{"a": ["12345678901234567890123", 1]}',
])
def test_loads_reads_what_json_reads(text):
    a, b = jsonio.loads(text), json.loads(text)
    assert repr(a) == repr(b)
    assert [type(x) for x in (a["a"] if isinstance(a, dict) and "a" in a else [])] == \
        [type(x) for x in (b["a"] if isinstance(b, dict) and "a" in b else [])]


@pytest.mark.parametrize("text", ['{"a": }', "{'single': 1}", '{"a": 1} x', "", '{"a": "\x01"}'])
def test_loads_fails_as_json_does(text):
    with pytest.raises(json.JSONDecodeError) as ours:
        jsonio.loads(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert ours.value.msg == theirs.value.msg


# ------------------------------------------------------------------------------------ results and records


def varied_result(seed: int = 0, n: int = 6) -> Result:
    """Detections with every kind of added field, NaN and infinities, far coordinates, -0.0."""
    rng = np.random.default_rng(seed)
    parts = {}
    for part in PART_NAMES:
        j = PARTS[part].num_joints
        pose2d = rng.uniform(-100, 4000, (n, j, 2))
        pose3d = rng.normal(0, 0.1, (n, j, 3)) * 10.0 ** rng.integers(-6, 1, (n, 1, 1))
        pose2d[0, 0] = (np.nan, -0.0)
        pose3d[1, 2] = (np.inf, -np.inf, 1e-5)
        scores = rng.uniform(0, 3, n)
        scores[2] = np.nan
        kw = {"track": np.arange(n) - 2, "reprojection_error_px": np.r_[np.nan, rng.uniform(0, 5, n - 1)],
              "pose3d_camera": rng.normal(0, 1, (n, j, 3)), "flag": rng.random(n) < 0.5,
              "note": np.array([None, "a", {"k": 1.5}, [1, 2], np.float32(2.5), None][:n], dtype=object)}
        kw["pose3d_camera"][3, 1, 0] = np.nan
        if part == "hand":
            kw["is_right"] = rng.random(n) < 0.5
        if part == "body":
            kw.update(left_hand=[0, -1, 2, -1, 1, 3], right_hand=[-1] * n, face=[1, 0, -1, 2, -1, -1])
        parts[part] = PartArrays(part, scores, pose2d, pose3d, **kw)
    return Result(720, 1280, image="vidéo.jpg", meta={"model": "m", "np": np.float32(1.5), "_hidden": 1}, **parts)


def test_to_dicts_is_each_detections_to_dict():
    for seed in range(3):
        result = varied_result(seed)
        for part in PART_NAMES:
            for decimals in (4, 2):
                fast = result[part].to_dicts(decimals)
                slow = [det.to_dict(part, decimals) for det in result[part]]
                assert jsonio.dumps_stdlib(fast) == jsonio.dumps_stdlib(slow)
        assert jsonio.dumps(result.to_dict()) == jsonio.dumps_stdlib(old_to_dict(result))


def plain_dict(result: Result) -> dict:
    """result.to_dict() as read back from a file, its nulls (non-finite numbers) replaced by numbers."""
    d = json.loads(json.dumps(jsonio._finite(result.to_dict())))
    for part in PART_NAMES:
        for det in d[part]:
            det["score"] = 0.5 if det["score"] is None else det["score"]
            for key in ("pose2d", "pose3d"):
                det[key] = [[0.0 if v is None else v for v in row] for row in det[key]]
    return d


def test_from_dict_is_the_one_detection_at_a_time_version():
    d = plain_dict(varied_result(1))
    for variant in (d, {**d, "hand": [{**h, "pose2d": [[1, 2]] * 21} for h in d["hand"]]}):  # ints: the old path
        fast, slow = Result.from_dict(variant), old_from_dict(variant)
        for part in PART_NAMES:
            a, b = fast[part].fields, slow[part].fields
            assert list(a) == list(b)
            for k in a:
                assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, (part, k)
                if a[k].dtype != object:
                    np.testing.assert_array_equal(a[k], b[k])
                else:
                    assert repr(a[k].tolist()) == repr(b[k].tolist())


def write_records(path, frames, **extra):
    """What --json writes (JsonFrames: record_line), checked against json_line(record(...)) line by line."""
    writer = JsonFrames(str(path), **extra)
    for item, result in frames:
        writer.write(Frame(item, None, result))
        assert record_line(item, result, **extra) == json_line(record(item, result, **extra))
    writer.close()


def test_record_line_is_json_line_of_record():
    """Every kind of added field (rows of floats, numbers, flags, objects some detections lack), NaN and
    infinities, -0.0, images and frames, extra keys (one in place of a part), top-level fields."""
    for seed in range(3):
        result = varied_result(seed)
        for item in (Item(0, "x.jpg"), Item(0, None), Item(3, "clip, 1: é.mp4", frame=3, time_s=0.12345678)):
            for extra in ({}, {"model": "m", "postprocess": "ppi"}, {"hand": "replaced", "camera": {"f": 1e-5}}):
                assert record_line(item, result, **extra) == json_line(record(item, result, **extra))
        empty = Result(10, 20, meta={"n": np.int64(3)})
        assert record_line(Item(0, "e.jpg"), empty) == json_line(record(Item(0, "e.jpg"), empty))
    face = varied_result(0).face
    n = len(face)
    odd = face.with_fields(half=np.linspace(-1e-5, 3, n).astype(np.float16), big=np.arange(n, dtype=np.uint64) * 2 ** 62,
                           grid=np.arange(4 * n).reshape(n, 2, 2), flags=np.ones((n, 2), bool), score=np.arange(n),
                           **{"100% é": np.full(n, -0.0), "empty_rows": np.zeros((n, 0))})
    result = Result(5, 5, face=odd)
    assert record_line(Item(0, "o.jpg"), result) == json_line(record(Item(0, "o.jpg"), result))
    wide = Result(5, 5, face=face.with_fields(wide=np.ones(n, np.longdouble)))  # json refuses numpy's longdouble
    for write in (lambda: json_line(record(Item(0, "w.jpg"), wide)), lambda: record_line(Item(0, "w.jpg"), wide)):
        with pytest.raises(TypeError):
            write()


def test_a_replay_writes_back_the_file_it_read(tmp_path):
    """Crowd records (far coordinates that float32 does not hold, scores down to 1e-5, links) come back
    byte for byte, as before: the saved numbers are kept."""
    src, out = tmp_path / "crowd.jsonl", tmp_path / "out.jsonl"
    write_records(src, crowd_results(frames=3, detections=60, seed=2), model="m", postprocess="ppi")
    frames = list(replay(str(src)))
    assert all(isinstance(r.meta["_saved"]["face"], SavedPart) for _, r in frames)  # the fast path ran
    write_records(out, frames)
    assert out.read_bytes() == src.read_bytes()


def saved_records(tmp_path, lines: list[dict]) -> str:
    path = tmp_path / "saved.jsonl"
    path.write_text("".join(json.dumps(obj) + "\n" for obj in lines), encoding="utf-8")
    return str(path)


PLAIN = ("plain", "image")  # the changes that leave a record in the plain form (the fast path)


def odd_records() -> list[dict]:
    """Plain records (a video frame, an image with a non-ASCII name holding ", " and ": ") and records
    that take the one-detection-at-a-time path (an int, null, a string or a bool in poses, a bool as
    a link, an int score)."""
    base = plain_dict(varied_result(3))
    base.pop("image")
    frames = []
    for t, change in enumerate(("plain", "ints", "null", "bool link", "int score", "image", "string", "bool")):
        obj = json.loads(json.dumps(base))
        obj.update(video="clip.mp4", frame=t, time_s=t / 25)
        if change == "ints":
            obj["body"][0]["pose2d"] = [[int(x), int(y)] for x, y in obj["body"][0]["pose2d"]]
        if change == "null":
            obj["face"][1]["pose3d"][0][0] = None
        if change == "bool link":
            obj["body"][0]["left_hand"] = True
        if change == "int score":
            obj["hand"][0]["score"] = 1
        if change == "string":
            obj["hand"][1]["pose3d"][0][0] = "0.5"
        if change == "bool":
            obj["face"][0]["pose2d"][0][0] = True
        if change == "image":
            for k in ("video", "frame", "time_s"):
                obj.pop(k)
            obj["image"] = "vidéo, 1: a.jpg"
        frames.append(obj)
    return frames


def old_output(path: str, change=None) -> bytes:
    """The old reader and writer over a saved file, with `change` applied to each result (a stage)."""
    lines = []
    with open(path, encoding="utf-8") as f:
        for index, line in enumerate(f):
            obj = json.loads(line)
            result = old_from_dict(obj)
            result.meta = {k: v for k, v in obj.items()
                           if k not in ("image", "video", "frame", "time_s", "height", "width") and k not in PART_NAMES}
            if change is not None:
                result = change(result)
            item = Item(index, obj["video"], obj["frame"], obj["time_s"]) if "frame" in obj else Item(index, obj["image"])
            lines.append(old_json_line(old_record(item, result, obj)))
    return "".join(lines).encode("utf-8")


def new_output(path: str, tmp_path, change=None) -> bytes:
    out = tmp_path / "new.jsonl"
    frames = [(item, result if change is None else change(result)) for item, result in replay(path)]
    write_records(out, frames)
    return out.read_bytes()


def nudge(result: Result) -> Result:
    """A stage that changes some detections (every other body's pose, a hand's score) and drops a face."""
    body = result.body
    pose2d = body.pose2d.copy()
    pose2d[::2] += 0.25
    hand_scores = result.hand.scores.copy()
    hand_scores[0] *= 2
    result = result.replace(body=PartArrays("body", body.scores, pose2d, body.pose3d,
                                            **{k: v for k, v in body.fields.items() if k not in ("scores", "pose2d", "pose3d")}),
                            hand=PartArrays("hand", hand_scores, result.hand.pose2d, result.hand.pose3d,
                                            **{k: v for k, v in result.hand.fields.items()
                                               if k not in ("scores", "pose2d", "pose3d")}))
    return result.select({"face": np.arange(len(result.face)) != 1})


@pytest.mark.parametrize("change", [None, nudge], ids=["as read", "changed by a stage"])
def test_replayed_records_are_written_as_before(tmp_path, change):
    path = saved_records(tmp_path, odd_records())
    fast = [isinstance(result.meta["_saved"]["body"], SavedPart) for _, result in replay(path)]
    assert fast == [True, False, False, False, False, True, False, False]
    # items: the old writer put an image's name from its record, a frame's video, frame and time from the item
    assert new_output(path, tmp_path, change) == old_output(path, change)


def test_universal_newlines_and_line_numbers(tmp_path):
    a, b = json.dumps({"height": 1, "width": 1, "image": "a"}), json.dumps({"height": 2, "width": 2, "image": "b"})
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(f"{a}\r\n\r\n{b}\r{a}\n  \n{b}".encode())
    assert [(n, o["height"]) for n, o in read_records(str(path))] == [(1, 1), (3, 2), (4, 1), (6, 2)]
    path.write_bytes(f"{a}\n{{broken\n".encode())
    with pytest.raises(ReplayError, match="line 2: not valid JSON"):
        list(read_records(str(path)))
    path.write_bytes(b'{"image": "\xff"}\n')
    with pytest.raises(ReplayError, match="not a text file"):
        list(read_records(str(path)))
    path.write_text(json.dumps({"height": 3, "width": 3, "body": []}, indent=2))  # one object over several lines
    assert [(n, o["height"]) for n, o in read_records(str(path))] == [(1, 3)]


def test_malformed_plain_looking_records_get_the_old_messages(tmp_path):
    good = plain_dict(varied_result(4))
    cases = {
        "body 0 left_hand -1 is not the index of a hand": ("body", 0, "left_hand", -1),
        "body 1 face 99 is not the index of a face": ("body", 1, "face", 99),
        r"hand 2 pose2d has shape \(20, 2\), expected \(21, 2\)": ("hand", 2, "pose2d", [[1.0, 2.0]] * 20),
        "face 0 pose3d is not an array of numbers": ("face", 0, "pose3d", [[1.0, "x", {}]] * 84),
        r"line 1: could not convert|line 1: float\(\) argument": ("hand", 1, "score", None),
    }
    for message, (part, k, key, value) in cases.items():
        obj = json.loads(json.dumps(good))
        obj[part][k][key] = value
        path = saved_records(tmp_path, [obj])
        with pytest.raises(ReplayError, match=message):
            list(replay(path))


def test_the_crowd_benchmark_runs_small(tmp_path):
    from benchmarks.crowd import make_crowd, report, time_json
    path = str(tmp_path / "crowd.jsonl")
    make_crowd(path, frames=2, detections=40)
    timings = time_json(path, runs=1)
    assert timings["same_bytes"] and timings["replayed_as_read"]
    replay = {"no_track": 0.1, "tracked": 0.3, "start_up": 1.0, "baseline_no_track": 0.4, "baseline_tracked": 2.0,
              "baseline_start_up": 1.0, "no_track_whole": 0.6, "tracked_whole": 0.9, "no_track_start_up": 1.0,
              "tracked_start_up": 1.2}
    text = report({"detections": 40, "json": timings, "tracking": None, "replay": replay})
    assert "reading" in text and "4.0x" in text and "200.0 ms per frame" in text
    # start-ups included: 0.9 - 0.6 s per frame, of which the tracker's imports (1.2 - 1.0 s) / 2 frames
    assert "start-ups included (as a user times two runs): 300.0 ms per frame" in text and "are 100.0 of it" in text


def test_bench_tracking_times_whole_crowd_replays():
    # bench.py --tracking's line of the issue's measure: whole replays of both crowd clips
    import re
    from benchmarks.crowd import replay_difference_report
    line = replay_difference_report(60, frames=2, replays=1)
    found = re.findall(r"(new detections every frame|moved 2 px a frame) (-?[0-9.]+)", line)
    assert [name for name, _ in found] == ["new detections every frame", "moved 2 px a frame"], line
    assert all(abs(float(ms)) < 5000 for _, ms in found)


def test_the_still_crowd_clip_holds_its_detections():
    """The still clip: the first frame's detections in every frame, each joint moved by the jitter."""
    from benchmarks.crowd import crowd_results
    frames = crowd_results(frames=3, detections=60, seed=4, jitter=2.0)
    first = frames[0][1]
    for _, r in frames[1:]:
        for part in ("body", "hand", "face"):
            a, b = getattr(first, part), getattr(r, part)
            assert len(a) == len(b) and np.array_equal(a.scores, b.scores)
            moved = b.pose2d - a.pose2d
            assert 1.0 < moved.std() < 3.0 and np.abs(moved).max() < 15
        np.testing.assert_array_equal(first.body.fields["face"], r.body.fields["face"])


@pytest.mark.parametrize("text, long", [
    ("[1234567890123456789]", True), ("[-1234567890123456789]", True), ("1234567890123456789", True),
    ("[123456789012345678]", False), ("[0.1234567890123456789012]", False), ("[1234567890123456789.5]", False),
    ("[1234567890123456789e5]", False), ('{"a": 12345678901234567890}', True), ('"x12345678901234567890"', True),
])
def test_integers_orjson_would_read_as_floats_go_to_json(text, long):
    assert jsonio._long_integer(text.encode()) == long
    assert repr(jsonio.loads(text)) == repr(json.loads(text))
    assert repr(jsonio.loads_fast(text.encode())) == repr(json.loads(text)) or long


def test_a_replay_without_orjson_writes_the_same_bytes(tmp_path, monkeypatch):
    src = tmp_path / "crowd.jsonl"
    write_records(src, crowd_results(frames=2, detections=40, seed=5), model="m")
    path = saved_records(tmp_path, odd_records())
    fast = [new_output(str(p), tmp_path) for p in (src, path)]
    monkeypatch.setattr(jsonio, "orjson", None)
    clear_caches()
    try:
        assert [new_output(str(p), tmp_path) for p in (src, path)] == fast
    finally:
        clear_caches()
