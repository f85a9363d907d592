"""The framework API is documented name by name (docs/writing_frameworks.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from marathon_core import framework

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "writing_frameworks.md"


@pytest.mark.skipif(not GUIDE.is_file(), reason="not run from a checkout")
def test_every_name_of_the_framework_api_is_documented() -> None:
    text = GUIDE.read_text()
    assert [name for name in framework.__all__ if f"`{name}`" not in text] == []
