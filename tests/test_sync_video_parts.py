"""The pieces under the video sync: the probe's ranged reads, job tokens, and the double itself."""

from __future__ import annotations

import io
import os
import re
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from PIL import Image

from catalog.labelling.rekognition_video import VideoJobRequest, client_request_token
from catalog.labelling.video import S3RangeReader, probe, probe_s3, transcode_to_mp4
from tests.factories import car_video, make_video

BUCKET = "media-library"


def noisy_mp4(frames: int = 20) -> bytes:
    """A few MB of incompressible H.264, with its index (moov) at the end."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"crf": "0", "preset": "ultrafast"}
        for index in range(frames):
            image = Image.frombytes("RGB", (320, 240), os.urandom(320 * 240 * 3))
            frame = av.VideoFrame.from_image(image)
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def test_probe_reads_only_part_of_a_large_video(s3: Any, bucket: str) -> None:
    data = noisy_mp4()
    s3.put_object(Bucket=bucket, Key="big.mp4", Body=data)
    reader = S3RangeReader(s3, bucket, "big.mp4", len(data))
    found = probe(reader)
    assert (found.codec, found.duration_ms, found.width) == ("h264", 2000, 320)
    assert reader.bytes_fetched < len(data) / 3


def test_probe_s3_reports_an_empty_object_without_reading_it(s3: Any, bucket: str) -> None:
    from catalog.errors import ObjectError

    with pytest.raises(ObjectError) as caught:
        probe_s3(s3, bucket, "missing.mp4", 0)
    assert caught.value.code == "EmptyObject"


@pytest.mark.parametrize("kind", ["mp4", "mov", "mpeg4", "webm"])
def test_factory_videos_probe_as_what_they_claim(kind: str) -> None:
    found = probe(io.BytesIO(make_video(kind)))
    expected = {
        "mp4": ("h264", "MP4"),
        "mov": ("h264", "MOV"),
        "mpeg4": ("mpeg4", "MP4"),
        "webm": ("vp9", "Matroska / WebM"),
    }[kind]
    assert (found.codec, found.container_format) == expected
    assert found.is_supported == (kind in ("mp4", "mov"))


def test_transcode_keeps_frame_times(tmp_path: Any) -> None:
    source = tmp_path / "in.webm"
    source.write_bytes(make_video("webm", duration_s=3.0))
    found = transcode_to_mp4(source, tmp_path / "out.mp4")
    assert (found.codec, found.container_format, found.duration_ms) == ("h264", "MP4", 3000)


def test_client_request_token_is_valid_and_depends_on_content_and_parameters() -> None:
    request = VideoJobRequest("b", "clips/a very long key " * 20, etag="abc")
    token = client_request_token(request, {"MinConfidence": 50.0})
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", token)
    assert token == client_request_token(request, {"MinConfidence": 50.0})
    others = {
        client_request_token(request, {"MinConfidence": 70.0}),
        client_request_token(
            VideoJobRequest("b", request.key, etag="abd"), {"MinConfidence": 50.0}
        ),
        client_request_token(
            VideoJobRequest("b", request.key, etag="abc", restart_of="job-1"),
            {"MinConfidence": 50.0},
        ),
    }
    assert token not in others and len(others) == 3


# -- the double behaves like the service ---------------------------------------------------------


@pytest.fixture
def rekognition(aws_env: dict[str, str]) -> Any:
    return boto3.client(
        "rekognition", region_name="us-east-1", config=Config(retries={"total_max_attempts": 1})
    )


def start(client: Any, key: str, token: str = "t1", **extra: Any) -> str:
    response = client.start_label_detection(
        Video={"S3Object": {"Bucket": BUCKET, "Name": key}}, ClientRequestToken=token, **extra
    )
    return str(response["JobId"])


def test_double_start_is_idempotent_per_token(rekognition: Any, put: Any) -> None:
    put("a.mp4", car_video())
    first = start(rekognition, "a.mp4")
    assert start(rekognition, "a.mp4") == first
    with pytest.raises(ClientError) as caught:
        start(rekognition, "a.mp4", MinConfidence=80.0)
    assert caught.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert start(rekognition, "a.mp4", token="t2") != first


def test_double_refuses_jobs_over_the_concurrent_limit(
    rekognition: Any, put: Any, rekognition_double: Any
) -> None:
    rekognition_double.max_concurrent_jobs = 1
    put("a.mp4", car_video())
    start(rekognition, "a.mp4", token="t1")
    with pytest.raises(ClientError) as caught:
        start(rekognition, "a.mp4", token="t2")
    assert caught.value.response["Error"]["Code"] == "LimitExceededException"


def test_double_job_runs_then_pages_its_labels(
    rekognition: Any, put: Any, rekognition_double: Any
) -> None:
    rekognition_double.video_polls = 2
    put("a.mp4", car_video())
    job = start(rekognition, "a.mp4")
    statuses = [rekognition.get_label_detection(JobId=job)["JobStatus"] for _ in range(2)]
    assert statuses == ["IN_PROGRESS", "IN_PROGRESS"]
    pages = [rekognition.get_label_detection(JobId=job, MaxResults=5)]
    while pages[-1].get("NextToken"):
        pages.append(
            rekognition.get_label_detection(
                JobId=job, MaxResults=5, NextToken=pages[-1]["NextToken"]
            )
        )
    assert [len(p["Labels"]) for p in pages] == [5, 5, 4]
    stamps = [item["Timestamp"] for p in pages for item in p["Labels"]]
    assert stamps == sorted(stamps)
    assert pages[0]["VideoMetadata"]["DurationMillis"] == 2000


@pytest.mark.parametrize("kind", ["mpeg4", "webm"])
def test_double_fails_jobs_it_cannot_decode(rekognition: Any, put: Any, kind: str) -> None:
    put("old.bin", make_video(kind))
    job = start(rekognition, "old.bin")
    rekognition.get_label_detection(JobId=job)  # IN_PROGRESS once
    response = rekognition.get_label_detection(JobId=job)
    assert (response["JobStatus"], response["StatusMessage"]) == (
        "FAILED",
        "Unsupported codec/format.",
    )


def test_double_forgets_expired_jobs(rekognition: Any, put: Any, rekognition_double: Any) -> None:
    put("a.mp4", car_video())
    job = start(rekognition, "a.mp4")
    rekognition_double.expire(job)
    with pytest.raises(ClientError) as caught:
        rekognition.get_label_detection(JobId=job)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert start(rekognition, "a.mp4") != job  # the token is free again
