"""Named metadata of a TFLite model file, read with no library: the few FlatBuffer rules the TFLite schema's
`Model.metadata` needs (a model file states its input layout there, `smsguard.layout`)."""

from __future__ import annotations

import struct

# Field slots of the TFLite schema (tensorflow/compiler/mlir/lite/schema/schema.fbs).
MODEL_BUFFERS, MODEL_METADATA = 4, 6  # table Model { version, operator_codes, subgraphs, description, buffers, metadata_buffer, metadata, ... }
METADATA_NAME, METADATA_BUFFER = 0, 1  # table Metadata { name: string; buffer: uint; }
BUFFER_DATA = 0  # table Buffer { data: [ubyte]; offset: ulong; size: ulong; }


def _u32(data: bytes, at: int) -> int:
    return int(struct.unpack_from("<I", data, at)[0])


def _field(data: bytes, table: int, slot: int) -> int:
    """The position of a table's field, or 0 when it is absent."""
    vtable = table - struct.unpack_from("<i", data, table)[0]
    size = struct.unpack_from("<H", data, vtable)[0]
    if 4 + 2 * slot >= size:
        return 0
    offset = struct.unpack_from("<H", data, vtable + 4 + 2 * slot)[0]
    return table + offset if offset else 0


def _deref(data: bytes, at: int) -> int:
    return at + _u32(data, at)


def _vector(data: bytes, table: int, slot: int) -> tuple[int, int]:
    """(position of the first element, length) of a vector field; (0, 0) when absent."""
    at = _field(data, table, slot)
    if not at:
        return 0, 0
    start = _deref(data, at)
    return start + 4, _u32(data, start)


def metadata(model: bytes) -> dict[str, bytes]:
    """Every named metadata entry of a TFLite model: name -> the bytes of its buffer (empty for an external one)."""
    try:
        root = _u32(model, 0)
        buffers, n_buffers = _vector(model, root, MODEL_BUFFERS)
        entries, n_entries = _vector(model, root, MODEL_METADATA)
        found = {}
        for i in range(n_entries):
            entry = _deref(model, entries + 4 * i)
            name_at = _field(model, entry, METADATA_NAME)
            index_at = _field(model, entry, METADATA_BUFFER)
            if not name_at or not index_at:
                continue
            name = _deref(model, name_at)
            index = _u32(model, index_at)
            if index >= n_buffers:
                continue
            start, length = _vector(model, _deref(model, buffers + 4 * index), BUFFER_DATA)
            found[model[name + 4 : name + 4 + _u32(model, name)].decode("utf-8", "replace")] = bytes(model[start : start + length])
        return found
    except struct.error:
        return {}
