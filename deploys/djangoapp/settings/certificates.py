"""Certificates from an ACME server such as Let's Encrypt (the deploy steps are in
site/certificates.py and site/certificate_sync.py)."""

from __future__ import annotations

import re
from typing import Optional

from pydantic import BaseModel, field_validator, model_validator

from .checks import EMAIL, HostNames, PemCertificate


class CertificateInputs(BaseModel):
    acme_email: Optional[str] = None
    acme_directory: str = "https://acme-v02.api.letsencrypt.org/directory"
    acme_ca_certificate: Optional[PemCertificate] = None
    acme_extra_domains: HostNames = []

    @field_validator("acme_email")
    @classmethod
    def _email(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not EMAIL.fullmatch(value):
            raise ValueError(f"must be an email address (got {value!r})")
        return value

    @field_validator("acme_directory")
    @classmethod
    def _https_url(cls, value: str) -> str:
        if not re.fullmatch(r"^https://[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._~/-]*)?$", value):
            raise ValueError(f"must be the https:// URL of an ACME directory (got {value!r})")
        return value

    @model_validator(mode="after")
    def _one_kind_of_certificate(self):
        if self.acme_email and self.site_certificate:
            raise ValueError("acme_email: a certificate from ACME and site_certificate/site_key exclude each other; "
                             "give one or the other")
        return self
