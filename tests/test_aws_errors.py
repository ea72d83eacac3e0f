"""botocore errors become short, one-line messages and the right error types."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from catalog.aws.errors import MAX_MESSAGE_CHARS, error_message, object_error
from catalog.errors import CredentialsError, ObjectError

HTML = (
    "<html>\n<head><title>500 Internal Server Error</title></head>\n<body>\n"
    "<center><h1>500 Internal Server Error</h1></center>\n<hr><center>nginx</center>\n"
    "</body>\n</html>\n"
)


def _client_error(status: int, code: str, message: str) -> ClientError:
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_object", service_error_code=code, service_message=message, http_status_code=status
        )
        with pytest.raises(ClientError) as caught:
            client.get_object(Bucket="b", Key="k")
    return caught.value


def test_an_html_error_page_becomes_the_status_and_code():
    exc = _client_error(500, "InternalError", HTML)
    assert error_message(exc) == "HTTP 500 (InternalError)"
    failure = object_error(exc, "reading s3://b/k", default_code="S3Error")
    assert isinstance(failure, ObjectError)
    assert (failure.code, failure.message) == ("InternalError", "HTTP 500 (InternalError)")


def test_a_service_message_is_kept_on_one_short_line():
    exc = _client_error(400, "InvalidRequest", "first line\nsecond   line " + "x" * 1000)
    message = error_message(exc)
    assert message.startswith("first line second line x")
    assert "\n" not in message
    assert len(message) == MAX_MESSAGE_CHARS


def test_expired_credentials_end_the_run_not_the_object():
    exc = _client_error(400, "ExpiredToken", "The provided token has expired.")
    assert isinstance(
        object_error(exc, "reading s3://b/k", default_code="S3Error"), CredentialsError
    )


def test_a_connection_error_is_a_per_object_failure_with_its_text():
    exc = EndpointConnectionError(endpoint_url="https://s3.example")
    failure = object_error(exc, "reading s3://b/k", default_code="S3Error")
    assert isinstance(failure, ObjectError)
    assert failure.code == "EndpointConnectionError"
    assert "https://s3.example" in failure.message
