"""Which way a run goes: one `Pipeline` (images, one video or camera, saved detections), the corpus
runner (several videos, corpus.py), or one Ray task (--ray with one video, cluster/videos.py).
The command line calls `execute`; nothing here knows argparse."""
from __future__ import annotations

from dope.config import RunConfig
from dope.pipeline import Pipeline


def execute(config: RunConfig) -> int:
    """Run `config`; the exit code (0; 1 when an input was skipped or an output failed)."""
    config = config.check()
    if isinstance(config.video, list):
        from dope.corpus import run_videos, single_video
        one = single_video(config)
        if one is None:
            return run_videos(config)
        config = config.replace(video=one)
    if config.ray is not None and config.video is not None:
        from dope.cluster.videos import run_video
        return run_video(config)
    return Pipeline(config).run()
