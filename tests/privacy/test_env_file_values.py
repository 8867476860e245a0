"""The values of a `.env` file: configuration stays, credentials go (session 34, regionfix34).

A `.env` line is one run of token characters (`=` is one of them), and the entropy rule judged the
whole `NAME=value`: `AWS_REGION=eu-north-1` has upper case, lower case and digits, 21 characters and
enough distinct ones, so the region went as a SECRET while `REGION=eu-north-1` (17) stayed. The name
of a variable is now read apart from its value, and the value alone is judged.
"""

from __future__ import annotations

import pytest

from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import DetectionConfig

# value -> redacted?
ENV = [
    ("AWS_REGION", "eu-north-1", False),
    ("AWS_DEFAULT_REGION", "us-east-1", False),
    ("S3_BUCKET_REGION", "ap-southeast-2", False),
    ("DATABASE_HOST", "db01.internal.example.com", False),
    ("CLOUDFRONT_DOMAIN", "d111111abcdef8", False),
    ("LOG_LEVEL", "INFO", False),
    ("SERVER_PORT_NUMBER", "8080", False),
    ("FEATURE_FLAG_ENABLED", "true", False),
    ("APP_VERSION_STRING", "v2.14.3-rc1", False),
    ("RELEASE_TAG", "Release-2026-12-07", False),
    ("UPLOAD_DIRECTORY", "/var/lib/app/Uploads2", False),
    ("DEPLOY_ENVIRONMENT", "Production2", False),
    ("SECRET_BACKEND", "vault", False),
    ("TOKEN_TTL_SECONDS", "3600", False),
    ("API_KEY_HEADER", "X-Api-Key", False),
    ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE", True),
    ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", True),
    ("DB_PASSWORD", "Xk9vQ2mLp8Rt4", True),
    ("SESSION_SECRET", "f9Kd82LmQx7Zp3RtVw5Y", True),
    ("SMTP_PASSWORD", "hunter2hunter2", True),
    ("WEBHOOK_SIGNING_KEY", "3f9a1c0e7b2d4a6f8e1c3b5d7a9f0e2c", True),
    ("GITHUB_TOKEN", "ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5", True),
    ("UPSTREAM_BLOB", "q8ZkR2vN7xLp4TmW9sYb3HcJ", True),
]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(DetectionConfig(classes={"secrets": {}}))


def test_each_value_of_a_realistic_env_file_meets_its_fate(detector: Detector) -> None:
    lines = [f"{name}={value}\n" for name, value, _ in ENV]
    text = "".join(lines)
    spans = [(f.start, f.end) for f in detector.scan(text) if f.entity == "SECRET"]
    at = 0
    for (name, value, secret), line in zip(ENV, lines, strict=True):
        v0 = at + len(name) + 1
        v1 = v0 + len(value)
        covered = any(s <= v0 and v1 <= e for s, e in spans)
        touched = any(s < at + len(line) and e > at for s, e in spans)
        if secret:
            assert covered, (name, value, [text[s:e] for s, e in spans])
        else:
            assert not touched, (name, value, [text[s:e] for s, e in spans])
        at += len(line)


@pytest.mark.parametrize("line", ["AWS_REGION=eu-north-1", "export AWS_REGION=us-east-1", "3\tAWS_REGION=eu-west-2"])
def test_a_region_after_a_long_name_is_not_a_secret(detector: Detector, line: str) -> None:
    assert [line[f.start:f.end] for f in detector.scan(line) if f.entity == "SECRET"] == []


def test_the_name_of_a_secret_stays_readable(detector: Detector) -> None:
    line = "SESSION_SECRET=f9Kd82LmQx7Zp3RtVw5Y"
    assert [line[f.start:f.end] for f in detector.scan(line) if f.entity == "SECRET"] == ["f9Kd82LmQx7Zp3RtVw5Y"]
