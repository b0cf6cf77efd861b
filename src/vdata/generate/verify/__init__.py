"""The verification gate of `vdata gen` and `vdata verify`: named checks over candidate records.

    from vdata.generate.verify import VerifySettings, verify_records
    result = verify_records(records, VerifySettings(margin=0.5))
    result.kept, result.rejected, result.reasons

Add a check with `register_check` (batch) or `record_check` (one record at a time); see docs/generate.md.
"""

from vdata.generate.verify.gate import Rejected, VerifyResult, enabled_checks, verify_records
from vdata.generate.verify.registry import (
    CHECKS,
    CheckContext,
    CheckResult,
    CheckSpec,
    record_check,
    register_check,
)
from vdata.generate.verify.settings import VerifySettings

__all__ = [
    "CHECKS",
    "CheckContext",
    "CheckResult",
    "CheckSpec",
    "Rejected",
    "VerifyResult",
    "VerifySettings",
    "enabled_checks",
    "record_check",
    "register_check",
    "verify_records",
]
