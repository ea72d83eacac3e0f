from tests.factories import car_jpeg


def test_sync_labels_an_image(invoke, put, rekognition_double):
    put("photos/car.jpg", car_jpeg())
    result = invoke("sync", "s3://media-library/photos/", "--no-progress", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    shown = invoke("show", "s3://media-library/photos/car.jpg", "--format", "json")
    assert '"Car"' in shown.stdout
