"""``send_text_now`` writes exactly the frame websockets itself would write."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from csms.ocpp16.wire import _text_header


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frame_bytes_match_the_library(size: int) -> None:
    data = b"x" * size
    ours = _text_header(size) + data
    assert ours == Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])
