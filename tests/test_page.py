"""The 3D view in the browser (dope/view3d/page.py): the page's data read back with numpy, its
size on a 300-frame clip of 5 people, and the page itself in a real headless Chromium (playwright
driving Debian's chromium; playwright's own browser download is not used).

Without chromium or playwright the browser tests are skipped; CI installs both and sets DOPE_CI=1,
which turns that skip into a failure.
"""
from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from handmade import background, person, scene_result
from dope.parts import PARTS
from dope.results import PartArrays, Result
from dope.view3d.scene import SCENE_TO_WORLD, assemble

from dope.view3d.page import HtmlPage, PageError, check_available, write_html

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_MISSING = [what for what, ok in (("playwright", importlib.util.find_spec("playwright") is not None),
                                        ("chromium", os.path.exists(CHROMIUM))) if not ok]
MB = 1_000_000


@pytest.fixture(autouse=True)
def plotly_installed(request):
    """The page needs the html extra (the html extra): skip without it, fail in CI (DOPE_CI=1)."""
    if request.node.name == "test_missing_plotly_is_one_line" or importlib.util.find_spec("plotly") is not None:
        return
    if os.environ.get("DOPE_CI") == "1":
        pytest.fail("DOPE_CI=1: plotly is missing; .ci/run installs the html extra", pytrace=False)
    pytest.skip("plotly is not installed (pip install 'dope-wholebody[html]')")
GREEN_RGB, BLUE_RGB = (0, 255, 0), (0, 0, 255)  # parts.GREEN / parts.BLUE are BGR; the same two colours


# ----------------------------------------------------------------------------- synthetic clips


def clip(frames: int = 300, people: int = 5, height: int = 480, width: int = 640) -> list[Result]:
    """People walking across the image, each with both hands and a face attached, tracks 10, 11, ..."""
    results = []
    for t in range(frames):
        bodies, hands, faces = [], [], []
        for k in range(people):
            x = width * (0.12 + 0.76 * k / max(people - 1, 1)) + 40 * np.sin(0.05 * t + k)
            body, (left, right), face = person(x, 0.55 * height, 180 * height / 480, yaw=10 * np.sin(0.03 * t + k),
                                               wave=0.5 + 0.5 * np.sin(0.1 * t + k), stride=0.3 * np.sin(0.2 * t + k),
                                               score=0.9 - 0.05 * k)
            body.left_hand, body.right_hand, body.face = len(hands), len(hands) + 1, len(faces)
            bodies.append(body)
            hands += [left, right]
            faces.append(face)
        r = Result(height=height, width=width, body=bodies, hand=hands, face=faces)
        tracks = 10 + np.arange(people)
        results.append(r.replace(body=r.body.with_fields(track=tracks),
                                 hand=r.hand.with_fields(track=np.repeat(tracks, 2)),
                                 face=r.face.with_fields(track=tracks)))
    return results


def page_data(path: str) -> dict:
    """The JSON the page's script reads, taken out of the HTML."""
    html = open(path, encoding="utf-8").read()
    m = re.search(r'<script type="application/json" id="dope-data">(.*?)</script>', html, re.S)
    assert m, "the page has no data element"
    return json.loads(m.group(1).replace("<\\/", "</"))


def unpack(det: dict, joints: int) -> np.ndarray:
    """float64[N, J, 3] coordinates of one part's detections over the clip, NaN where missing."""
    dtype = {"i2": "<i2", "i4": "<i4"}[det["dtype"]]
    ints = np.frombuffer(base64.b64decode(det["xyz"]), dtype).astype(np.float64)
    ints[ints == np.iinfo(dtype).min] = np.nan
    return ints.reshape(-1, joints, 3)


def world(points: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64) @ SCENE_TO_WORLD.T


def camera_result(depths=(3.0, 9.0), focal: float = 800.0, height: int = 480, width: int = 640) -> Result:
    """People at known depths in camera space (metres, x right, y down, z forward), projected by a
    pinhole camera of `focal` pixels centred on the image; pose3d_camera set on every part."""
    r = scene_result(height, width)
    rng = np.random.default_rng(0)
    body_cam, hand_cam, face_cam = [], [], []
    hand_of = {}
    for b, z in zip(range(len(r.body)), list(depths) + [5.0] * len(r.body)):
        offset = np.array([rng.uniform(-1, 1), 0.2, z])
        joints = r.body.pose3d[b] * np.array([-1, -1, 1]) + offset  # body pose3d is stored flipped
        body_cam.append(joints)
        for link, wrist in (("left_hand", 7), ("right_hand", 6)):
            h = r.body.fields[link][b]
            hand_of[h] = r.hand.pose3d[h] - r.hand.pose3d[h][0] + joints[wrist]
        face_cam.append(r.face.pose3d[r.body.face[b]] + joints[12])
    for h in range(len(r.hand)):
        hand_cam.append(hand_of.get(h, r.hand.pose3d[h] + np.array([0.5, -0.5, 4.0])))
    centre = np.array([width / 2, height / 2])

    def project(p):
        p = np.asarray(p, np.float64)
        return (focal * p[..., :2] / p[..., 2:] + centre).astype(np.float32)

    body, hand, face = (np.array(x) for x in (body_cam, hand_cam, face_cam))
    return r.replace(body=PartArrays("body", r.body.scores, project(body), r.body.pose3d,
                                           **{k: v for k, v in r.body.fields.items() if k not in ("scores", "pose2d", "pose3d")},
                                           pose3d_camera=body),
                     hand=PartArrays("hand", r.hand.scores, project(hand), r.hand.pose3d,
                                           is_right=r.hand.is_right, pose3d_camera=hand),
                     face=PartArrays("face", r.face.scores, project(face), r.face.pose3d, pose3d_camera=face))


# ------------------------------------------------------------------------- the page's data


def test_one_image_data_reads_back_as_the_visu3d_placement(tmp_path):
    r = scene_result()
    path = write_html([r], tmp_path / "one.html", [background()])
    d = page_data(path)
    assert d["frames"] == 1 and d["mode"] == "image" and len(d["backdrops"]) == 1
    expected = assemble(r)
    for part in ("body", "hand", "face"):
        got = unpack(d["detections"][part], PARTS[part].num_joints) * d["unit"]
        want = world(expected[part] / r.height)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=0.6e-3)  # rounded to 1e-3 image heights
        # person ids: no tracks, so the body index; hands and faces take their body's
        assert d["detections"][part]["count"] == [len(r[part])]
    assert d["detections"]["body"]["person"] == [0, 1, 2]
    assert d["detections"]["hand"]["person"] == [0, 0, 1, 1, 2, 2, -1]  # the last hand is alone
    assert d["detections"]["face"]["person"] == [0, 1, 2]
    assert d["detections"]["body"]["score"] == [round(s * 1000) for s in r.body.scores]
    body = next(p for p in d["parts"] if p["name"] == "body")
    assert body["joints"][6] == "r_wrist" and "rgb(0,255,0)" in body["bone_colors"]
    # the backdrop is a JPEG of the image, shrunk
    import cv2
    jpeg = cv2.imdecode(np.frombuffer(base64.b64decode(d["backdrops"][0]), np.uint8), cv2.IMREAD_COLOR)
    assert jpeg.shape[1] == 192 and abs(jpeg.shape[0] / jpeg.shape[1] - 480 / 640) < 0.01
    small = cv2.resize(background()[:, :, ::-1], jpeg.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(jpeg.astype(int) - small).mean() < 3


def test_tracks_and_camera_space(tmp_path):
    r = camera_result()
    tracked = r.replace(body=r.body.with_fields(track=[7, 3, 5]),
                        hand=r.hand.with_fields(track=[7, 7, 3, 3, 5, 5, 40]))
    page = HtmlPage()
    page.add(tracked, background())
    data = page.data()
    assert data["mode"] == "camera" and data["units"] == "m" and data["tracked"]
    assert data["detections"]["body"]["person"] == [7, 3, 5]
    assert data["detections"]["hand"]["person"] == [7, 7, 3, 3, 5, 5, 40]
    assert data["detections"]["face"]["person"] == [7, 3, 5]  # no track of their own: the body's
    body = unpack(data["detections"]["body"], 13) * data["unit"]
    np.testing.assert_allclose(body, world(r.body.pose3d_camera), atol=0.6e-3)  # millimetres
    assert abs(np.median(body[0, :, 1]) - 3.0) < 0.3 and abs(np.median(body[1, :, 1]) - 9.0) < 0.3
    assert abs(data["focal"] - 800.0) < 0.5  # fitted to the 2D and camera-space joints
    # the image plane fills the camera's view behind everyone, the camera at the origin
    plane = np.array(data["plane"])
    depth = plane[0, 1]
    assert depth > body[..., 1].max()
    np.testing.assert_allclose(plane[:, 0] * 800 / depth + 320, [0, 640, 640, 0], atol=0.1)
    np.testing.assert_allclose(data["camera"][0], [0, 0, 0])


def test_detections_without_camera_placement_are_left_out_in_camera_space(caplog):
    r = camera_result()
    page = HtmlPage()
    page.add(r)
    page.add(scene_result())  # no pose3d_camera: not shown in a camera-space page
    data = page.data()
    assert data["detections"]["body"]["count"] == [3, 0]
    assert "no pose3d_camera" in caplog.text


def test_missing_joints_stay_missing():
    r = scene_result()
    pose2d = r.body.pose2d.copy()
    pose2d[1, 4] = np.nan
    r = r.replace(body=PartArrays("body", r.body.scores, pose2d, r.body.pose3d, face=r.body.face,
                                        left_hand=r.body.left_hand, right_hand=r.body.right_hand))
    page = HtmlPage()
    page.add(r)
    got = unpack(page.data()["detections"]["body"], 13)
    assert np.isnan(got[1]).any() and np.isfinite(got[0]).all()


def test_size_budget_300_frames_5_people(tmp_path):
    results = clip(300, 5)
    path = write_html(results, tmp_path / "clip.html", [background()] + [None] * 299, fps=25)
    size = os.path.getsize(path)
    print(f"300 frames x 5 people: {size / MB:.2f} MB")
    assert size < 10 * MB
    d = page_data(path)
    assert d["frames"] == 300 and len(d["backdrops"]) == 1 and d["fps"] == 25
    assert d["detections"]["body"]["count"] == [5] * 300
    # the last frame reads back (every frame is there, not only the first)
    got = unpack(d["detections"]["hand"], 21)[-10:] * d["unit"]
    np.testing.assert_allclose(got, world(assemble(results[-1])["hand"] / 480), atol=0.6e-3)


def test_no_external_urls(tmp_path):
    html = open(write_html([scene_result()], tmp_path / "p.html"), encoding="utf-8").read()
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.I)
    assert not re.search(r"<link[^>]*\bhref\s*=", html, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", html, re.I)


def test_bad_inputs():
    with pytest.raises(ValueError, match="backdrop"):
        HtmlPage(backdrop="all")
    with pytest.raises(ValueError, match="focal"):
        HtmlPage(focal=-5)
    with pytest.raises(ValueError, match="no frames"):
        HtmlPage().data()


def test_missing_plotly_is_one_line(tmp_path, checkpoint_path, fixture_image):
    """Without plotly, the CLI says what to install on one line, before loading the model."""
    fake = tmp_path / "fake"
    (fake / "plotly").mkdir(parents=True)
    (fake / "plotly" / "__init__.py").write_text("raise ImportError('no plotly here')\n")
    env = {**os.environ, "PYTHONPATH": str(fake)}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), "--model", checkpoint_path, "--image",
                           fixture_image, "--html", str(tmp_path / "out.html"), "--no-overlay", "-q"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["dope.py: error: the HTML page needs plotly: "
                                                "pip install 'dope-wholebody[html]'"]
    assert not (tmp_path / "out.html").exists()


def test_cli_writes_the_page(tmp_path, checkpoint_path, fixture_image):
    out = tmp_path / "out.html"
    second = tmp_path / "second.png"
    shutil.copy(fixture_image, second)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), "--model", checkpoint_path, "--image",
                           fixture_image, str(second), "--html", str(out), "--no-overlay", "-q",
                           "--json", str(tmp_path / "out.jsonl")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    d = page_data(str(out))
    lines = [json.loads(x) for x in open(tmp_path / "out.jsonl")]
    assert d["frames"] == 2 and len(d["backdrops"]) == 2  # an image list: one backdrop per image
    assert d["labels"] == [os.path.basename(fixture_image), "second.png"]
    assert d["detections"]["body"]["count"] == [len(x["body"]) for x in lines]
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")], "a staging file was left behind"
    assert "frame" not in d["labels"][0] and d["mode"] == "image"


def test_cli_makes_a_missing_folder_and_refuses_a_file_in_the_way(tmp_path, checkpoint_path, fixture_image):
    """As for --json (issue 21): a missing folder is made; a file where the folder should be is refused."""
    (tmp_path / "afile").write_text("x")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), "--model", checkpoint_path, "--image",
                           fixture_image, "--html", str(tmp_path / "afile" / "out.html"), "-q", "--no-overlay"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "afile" in proc.stderr and "not a folder" in proc.stderr
    assert (tmp_path / "afile").read_text() == "x"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), "--model", checkpoint_path, "--image",
                           fixture_image, "--html", str(tmp_path / "nowhere" / "out.html"), "-q", "--no-overlay"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "nowhere" / "out.html").is_file()


# -------------------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium, driven by playwright."""
    if BROWSER_MISSING:
        why = f"the browser tests need {' and '.join(BROWSER_MISSING)} (pip install playwright; apt-get install chromium)"
        if os.environ.get("DOPE_CI") == "1":
            pytest.fail(f"DOPE_CI=1: {why}; .ci/run installs them", pytrace=False)
        pytest.skip(why)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--enable-unsafe-swiftshader"])
        yield b
        b.close()


class Opened:
    """A page opened offline: every request aborted and recorded, console errors collected."""

    def __init__(self, browser, path: str) -> None:
        self.context = browser.new_context(viewport={"width": 1100, "height": 760}, offline=True)
        self.requests: list[str] = []
        self.errors: list[str] = []

        def route(r):
            if not r.request.url.startswith(("file:", "data:", "blob:")):
                self.requests.append(r.request.url)
            r.abort() if not r.request.url.startswith("file:") else r.continue_()
        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto("file://" + os.path.abspath(path))
        self.page.wait_for_function("window.dope && window.dope.ready", timeout=60_000)
        self.page.wait_for_timeout(300)

    def screenshot(self, path=None) -> np.ndarray:
        import cv2
        png = self.page.locator("#dope-plot").screenshot(path=path)
        return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]  # RGB

    def show(self, frame: int) -> None:
        self.page.eval_on_selector("#dope-slider", "(e, f) => { e.value = f; e.dispatchEvent(new Event('input')); }",
                                   frame)
        self.page.wait_for_function(f"window.dope.shown === {frame}", timeout=30_000)
        self.page.wait_for_timeout(200)

    def trace(self, name: str) -> dict:
        """x, y, z of the first plotted trace with this name (what plotly drew)."""
        return self.page.evaluate("""name => { const t = document.getElementById('dope-plot').data
            .find(t => t.name === name); return {x: Array.from(t.x), y: Array.from(t.y), z: Array.from(t.z),
            text: t.text ? Array.from(t.text) : []}; }""", name)

    def close(self) -> None:
        self.context.close()


def colour_pixels(rgb: np.ndarray, colour: tuple[int, int, int], tol: int = 40) -> int:
    return int((np.abs(rgb.astype(int) - colour).max(-1) <= tol).sum())


@pytest.fixture(scope="module")
def clip_page(tmp_path_factory):
    results = clip(60, 5)
    path = tmp_path_factory.mktemp("page") / "clip.html"
    return write_html(results, path, [background()], fps=20)


def test_browser_draws_one_image_offline(browser, tmp_path):
    path = write_html([scene_result()], tmp_path / "one.html", [background()])
    empty = write_html([Result(height=480, width=640)], tmp_path / "empty.html", [background()])
    opened = Opened(browser, path)
    try:
        shot = opened.screenshot(str(tmp_path / "one.png"))
        assert opened.errors == []
        assert opened.requests == []
        # the skeleton: the bones' green (left limbs) and blue (right limbs, trunk) are on screen
        assert colour_pixels(shot, GREEN_RGB) > 300 and colour_pixels(shot, BLUE_RGB) > 300
        # the backdrop: the wall's colour (RGB ~(205, 213, 221) near its top)
        assert colour_pixels(shot, tuple(int(v) for v in background()[20, 320]), tol=12) > 500
        hover = opened.trace("body")["text"]
        assert "body \u00b7 r_wrist<br>person 0 (detection index)<br>score 0.950" in hover
    finally:
        opened.close()
    opened = Opened(browser, empty)
    try:
        shot = opened.screenshot()
        assert opened.errors == []
        assert colour_pixels(shot, GREEN_RGB) < 20 and colour_pixels(shot, BLUE_RGB) < 20  # nobody, no bones
    finally:
        opened.close()


def test_browser_hover_names_the_joint(browser, tmp_path):
    """The mouse over a body joint shows its part, joint name, person and score."""
    path = write_html([scene_result()], tmp_path / "one.html", [background()])
    opened = Opened(browser, path)
    try:
        page = opened.page
        page.click("#dope-view")  # face the image: joints are well apart
        page.wait_for_timeout(500)
        shot = opened.screenshot()
        box = page.locator("#dope-plot").bounding_box()
        # joints of person 0 are marked in the first person colour (#e6194b)
        ys, xs = np.nonzero(np.abs(shot.astype(int) - (0xe6, 0x19, 0x4b)).max(-1) <= 30)
        assert len(xs) > 10, "no joint marker of person 0 on screen"
        texts = ""
        for i in np.linspace(0, len(xs) - 1, 12).astype(int):
            page.mouse.move(box["x"] + float(xs[i]), box["y"] + float(ys[i]))
            page.wait_for_timeout(150)
            texts = page.evaluate("() => Array.from(document.querySelectorAll('.hovertext')).map(e => e.textContent).join('|')")
            if texts:
                break
        assert "person 0" in texts and "score" in texts and re.search(r"(body|hand|face) · \w+", texts), texts
    finally:
        opened.close()


def test_browser_slider_and_play(browser, clip_page, tmp_path):
    opened = Opened(browser, clip_page)
    try:
        page = opened.page
        assert page.is_visible("#dope-slider") and page.is_visible("#dope-play")
        first = opened.screenshot(str(tmp_path / "f0.png"))
        bones0 = opened.trace("body bones")
        opened.show(45)
        later = opened.screenshot(str(tmp_path / "f45.png"))
        bones45 = opened.trace("body bones")
        assert "frame 45" in page.inner_text("#dope-label")
        assert bones0["x"] != bones45["x"], "the slider did not change the plotted bones"
        changed = (np.abs(first.astype(int) - later).max(-1) > 30).mean()
        assert changed > 0.002, f"the picture barely changed ({changed:.4%} of pixels)"
        assert colour_pixels(later, GREEN_RGB) > 300
        wall = tuple(int(v) for v in background()[20, 320])
        assert colour_pixels(later, wall, tol=12) > 500, "the backdrop is gone after a frame change"
        # play: frames advance on their own, then pause stops them
        page.click("#dope-play")
        page.wait_for_function("window.dope.shown !== 45 && window.dope.playing", timeout=10_000)
        page.wait_for_timeout(400)
        page.click("#dope-play")
        stopped = page.evaluate("window.dope.frame")
        page.wait_for_timeout(400)
        assert page.evaluate("window.dope.frame") == stopped and not page.evaluate("window.dope.playing")
        assert opened.errors == [] and opened.requests == []
    finally:
        opened.close()


def test_browser_one_backdrop_per_image(browser, tmp_path):
    """An image list: each frame shows its own image behind its people."""
    orange, teal = (np.full((480, 640, 3), c, np.uint8) for c in ((200, 100, 0), (0, 128, 128)))
    path = write_html([scene_result(), scene_result()], tmp_path / "list.html", [orange, teal], backdrop="each")
    opened = Opened(browser, path)
    try:
        first = opened.screenshot()
        opened.show(1)
        second = opened.screenshot()
        assert colour_pixels(first, (200, 100, 0), tol=12) > 5000 and colour_pixels(first, (0, 128, 128), tol=12) < 100
        assert colour_pixels(second, (0, 128, 128), tol=12) > 5000 and colour_pixels(second, (200, 100, 0), tol=12) < 100
        assert colour_pixels(second, GREEN_RGB) > 300  # the people are still drawn
        assert opened.errors == []
    finally:
        opened.close()


def test_browser_camera_space_page(browser, tmp_path):
    path = write_html([camera_result()], tmp_path / "cam.html")  # no image: a plain backdrop plane
    opened = Opened(browser, path)
    try:
        shot = opened.screenshot(str(tmp_path / "cam.png"))
        assert opened.errors == []
        assert colour_pixels(shot, GREEN_RGB) > 100 and colour_pixels(shot, BLUE_RGB) > 100
        assert "camera space" in opened.page.inner_text("#dope-info")
    finally:
        opened.close()


def test_check_available():
    check_available()  # plotly is installed where these tests run (the html extra)
    assert issubclass(PageError, RuntimeError)
