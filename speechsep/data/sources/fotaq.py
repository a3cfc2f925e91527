"""Flight of the Amazon Queen (``flight-of-the-amazon-queen``): the game's recorded dialogue.

The resource table and the speaker rule are in :mod:`speechsep.data.fotaq`: one MP3 entry a line,
the character from the dialogue's talk key, Joe (the hero) for ``J`` lines and ``JOE*`` narration.
Lines that cannot be mapped to a character are left out.

Actor groups: the game's credits do not say which actor voiced which character, and a small cast
voiced about 30 characters, so the whole cast is one group (``fotaq/cast``): every FOTAQ voice
stays in one split (training, since it is the largest source), never heard in test under another
character's name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speechsep.data.fotaq import (
    RESOURCE_PATH,
    ResourceEntry,
    decode_entry,
    read_resource_table,
    speech_entries,
)
from speechsep.data.sources.base import Listing, SourceError, SourceUtterance, SpeechSource

__all__ = ["FotaqSource"]


class FotaqSource(SpeechSource):
    name = "fotaq"
    packages = ("flight-of-the-amazon-queen",)
    description = "adventure game dialogue, English, about 30 characters (MP3, 11,025 Hz)"

    def list(self, folders: dict[str, Path]) -> Listing:
        given = Path(folders[self.packages[0]])
        # The unpacked package, a folder holding queen.1c, or queen.1c itself.
        table = next((p for p in (given / RESOURCE_PATH, given / "queen.1c", given) if p.is_file()), given / RESOURCE_PATH)
        if not table.is_file():
            raise SourceError(f"{table} not found: not an unpacked {self.packages[0]} package")
        lines, _ = speech_entries(table)
        mapped = {e.name for e in lines}
        unmapped = [e.name for e in read_resource_table(table) if e.name.endswith(".SB") and e.name not in mapped]
        utterances = [
            SourceUtterance(
                id=f"{self.name}/{e.name.rsplit('.', 1)[0]}", speaker=f"{self.name}/{e.speaker}", language="en",
                path=str(table), entry=f"{e.name}:{e.offset}:{e.size}", actor_group=f"{self.name}/cast",
            )
            for e in lines
        ]
        skipped = [(f"{table}:{name}", "no character for this line's talk key") for name in unmapped]
        return Listing(utterances, files_seen=len(lines) + len(unmapped), skipped=skipped)

    def decode(self, utterance: SourceUtterance) -> tuple[np.ndarray, int]:
        name, offset, size = utterance.entry.rsplit(":", 2)
        return decode_entry(utterance.path, ResourceEntry(name, int(offset), int(size)))
