"""Make examples/astronaut-pan.mp4: a 3-second, 10 fps H.264 pan across astronaut.png (PyAV)."""

from pathlib import Path

import av
import numpy as np
from PIL import Image

HERE = Path(__file__).parent
WIDTH, HEIGHT, FPS, SECONDS = 320, 240, 10, 3


def main() -> None:
    picture = np.asarray(Image.open(HERE / "astronaut.png").convert("RGB"))
    frames = FPS * SECONDS
    with av.open(str(HERE / "astronaut-pan.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "28"}
        for index in range(frames):
            left = round(150 * index / (frames - 1))  # the face stays in view all the way
            window = np.ascontiguousarray(picture[20 : 20 + HEIGHT, left : left + WIDTH])
            for packet in stream.encode(av.VideoFrame.from_ndarray(window, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


if __name__ == "__main__":
    main()
