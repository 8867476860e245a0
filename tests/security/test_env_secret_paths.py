"""Environment secrets that start with `/`: a base64 secret (an AWS secret access key starts with `/` one time in
64) is registered and scrubbed; a variable naming a file that exists is a path and is left alone."""
import secrets

from tierwise import secret_scrub


def test_a_secret_starting_with_a_slash_is_registered_and_a_path_is_not(tmp_path):
    aws = "/" + secrets.token_urlsafe(30).replace("-", "+").replace("_", "/")[:39]
    creds = tmp_path / "creds.json"
    creds.write_text("{}")
    env = {"AWS_SECRET_ACCESS_KEY": aws, "GOOGLE_APPLICATION_CREDENTIALS_KEY": str(creds)}
    found = secret_scrub.env_secrets(env)
    assert aws in found
    assert str(creds) not in found


def test_a_registered_slash_secret_is_scrubbed_from_text():
    aws = "/" + secrets.token_hex(20)
    secret_scrub.register(secret_scrub.env_secrets({"AWS_SECRET_ACCESS_KEY": aws}))
    assert aws not in secret_scrub.scrub(f"upstream said: bad signature for {aws} at 12:00")
