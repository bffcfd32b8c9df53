"""AWS managed IAM policies in moto.

Instance roles attach AWS managed policies (``AmazonSSMManagedInstanceCore``), so the emulator
turns on moto's loading of them. moto parses its ~1,600 bundled policies from JSON again for
every IAM backend it creates (each reset): we parse once and only build the objects per backend.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

_parsed: list[tuple[str, Any, Any, str, datetime, datetime]] | None = None


def install() -> None:
    from moto.core.config import default_user_config
    from moto.iam import models as iam_models

    default_user_config.setdefault("iam", {})["load_aws_managed_policies"] = True
    if getattr(iam_models.IAMBackend, "_emu_policies_patched", False):
        return

    def _init_aws_policies(self: Any) -> list[Any]:
        global _parsed
        if not iam_models.load_iam_aws_managed_policies():
            return []
        if _parsed is None:
            data = json.loads(iam_models.aws_managed_policies_data)
            _parsed = [(name, d.get("DefaultVersionId"), d.get("Path"),
                        json.dumps(d.get("Document")), datetime.fromisoformat(d["CreateDate"]),
                        datetime.fromisoformat(d["UpdateDate"])) for name, d in data.items()]
        return [iam_models.AWSManagedPolicy(
            name, account_id=self.account_id, region=self.region_name, default_version_id=version,
            path=path, document=document, create_date=created, update_date=updated)
            for name, version, path, document, created, updated in _parsed]

    iam_models.IAMBackend._init_aws_policies = _init_aws_policies
    iam_models.IAMBackend._emu_policies_patched = True
