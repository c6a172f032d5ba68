# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""RemotePolicy's TLS trust follows the environment as requests' did: REQUESTS_CA_BUNDLE /
CURL_CA_BUNDLE naming a file is a CA bundle, naming a directory (hashed certificates, as
``c_rehash`` makes) is a CA directory; requests' own bundle otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from openvla_ros.serving.client import _connection_pool


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_ca_directory_is_a_directory_and_a_file_is_a_bundle(
    variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for other in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(other, raising=False)
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not parsed until a TLS handshake\n")
    monkeypatch.setenv(variable, str(bundle))
    kw = _connection_pool("https://policy.example:8000/").connection_pool_kw
    assert kw.get("ca_certs") == str(bundle) and "ca_cert_dir" not in kw
    monkeypatch.setenv(variable, str(tmp_path))
    kw = _connection_pool("https://policy.example:8000/").connection_pool_kw
    assert kw.get("ca_cert_dir") == str(tmp_path) and "ca_certs" not in kw  # was: a "bundle"


def test_without_the_variables_requests_bundle_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    for other in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(other, raising=False)
    kw = _connection_pool("https://policy.example:8000/").connection_pool_kw
    assert kw.get("ca_certs") == requests.utils.DEFAULT_CA_BUNDLE_PATH
