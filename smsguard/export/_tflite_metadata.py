"""TFLite model metadata for a text classifier with a regex tokenizer, without tflite-support.

The metadata is a FlatBuffer of the published schema `metadata_schema.fbs` (tensorflow/tflite-support,
also mediapipe/tasks/metadata; Apache-2.0, file identifier "M001"), stored in a model buffer listed
under the name "TFLITE_METADATA"; associated files (vocabulary, labels) are an uncompressed zip
appended to the model file. That is what tflite-support's and MediaPipe's `MetadataPopulator` write
and what MediaPipe's `ModelMetadataExtractor` reads. Their writers pin an old protobuf (or, in
mediapipe 1.2.3, miss a native module), so this module builds the few tables it needs with the
`flatbuffers` package and TensorFlow's generated TFLite schema. Field slots below are the schema's
field order; a union takes two slots (its type, then its value).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import flatbuffers

METADATA_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
TFLITE_IDENTIFIER = b"TFL3"
# The oldest metadata parser that reads what this module writes: RegexTokenizerOptions came in 1.2.1
# (mediapipe/tasks/cc/metadata/metadata_version.cc); a VOCABULARY file needs 1.0.1.
MIN_PARSER_VERSION = "1.2.1"

# enum AssociatedFileType
TENSOR_AXIS_LABELS = 2
VOCABULARY = 5
# union ContentProperties / ProcessUnitOptions
FEATURE_PROPERTIES = 1
REGEX_TOKENIZER_OPTIONS = 6


@dataclass(frozen=True)
class TextClassifierMetadata:
    name: str
    description: str
    version: str
    author: str
    license: str
    input_name: str
    input_description: str
    delim_regex_pattern: str
    vocab_name: str
    output_name: str
    output_description: str
    labels_name: str


class _Writer:
    """The few FlatBuffer constructs the metadata needs, on one builder. Strings and vectors must be built before
    the table that holds them starts; the call order below is the byte order of the result."""

    def __init__(self) -> None:
        self.b = flatbuffers.Builder(1024)

    def string(self, text: str) -> int:
        return self.b.CreateString(text)

    def table(self, fields: list[tuple[int, str, int]]) -> int:
        """fields: (slot, kind, value) with kind "offset", "byte" or "uoffset"."""
        b = self.b
        b.StartObject(max(slot for slot, _, _ in fields) + 1)
        for slot, kind, value in fields:
            if kind == "byte":
                b.PrependInt8Slot(slot, value, 0)
            else:
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
        return b.EndObject()

    def offsets(self, items: list[int]) -> int:
        self.b.StartVector(4, len(items), 4)
        for item in reversed(items):
            self.b.PrependUOffsetTRelative(item)
        return self.b.EndVector()

    def floats(self, values: list[float]) -> int:
        self.b.StartVector(4, len(values), 4)
        for value in reversed(values):
            self.b.PrependFloat32(value)
        return self.b.EndVector()

    def associated_file(self, name: str, description: str, kind: int) -> int:
        name_offset, description_offset = self.string(name), self.string(description)
        # table AssociatedFile { name, description, type, locale, version }
        return self.table([(0, "offset", name_offset), (1, "offset", description_offset), (2, "byte", kind)])

    def feature_content(self) -> int:
        self.b.StartObject(0)  # table FeatureProperties {}
        feature = self.b.EndObject()
        # table Content { content_properties_type, content_properties, range }
        return self.table([(0, "byte", FEATURE_PROPERTIES), (1, "offset", feature)])


def _input_tensor(w: _Writer, md: TextClassifierMetadata) -> int:
    """The input: the token ids, with the regex tokenizer that makes them."""
    vocab = w.associated_file(md.vocab_name, "Vocabulary: one 'word id' a line; <PAD> and <UNKNOWN> are required.", VOCABULARY)
    pattern = w.string(md.delim_regex_pattern)
    vocab_files = w.offsets([vocab])
    # table RegexTokenizerOptions { delim_regex_pattern, vocab_file }
    tokenizer_options = w.table([(0, "offset", pattern), (1, "offset", vocab_files)])
    # table ProcessUnit { options_type, options }
    tokenizer = w.table([(0, "byte", REGEX_TOKENIZER_OPTIONS), (1, "offset", tokenizer_options)])
    input_name, input_description = w.string(md.input_name), w.string(md.input_description)
    input_content = w.feature_content()
    input_units = w.offsets([tokenizer])
    # table TensorMetadata { name, description, dimension_names, content, process_units, stats, associated_files }
    return w.table([(0, "offset", input_name), (1, "offset", input_description), (3, "offset", input_content), (4, "offset", input_units)])


def _output_tensor(w: _Writer, md: TextClassifierMetadata) -> int:
    """The output: the score, its range and its label file."""
    labels = w.associated_file(md.labels_name, "Label of the score, one a line.", TENSOR_AXIS_LABELS)
    output_name, output_description = w.string(md.output_name), w.string(md.output_description)
    output_content = w.feature_content()
    high, low = w.floats([1.0]), w.floats([0.0])
    stats = w.table([(0, "offset", high), (1, "offset", low)])  # table Stats { max, min }
    output_files = w.offsets([labels])
    return w.table(
        [(0, "offset", output_name), (1, "offset", output_description), (3, "offset", output_content), (5, "offset", stats), (6, "offset", output_files)]
    )


def metadata_buffer(md: TextClassifierMetadata) -> bytes:
    """The ModelMetadata FlatBuffer: one subgraph, a text input with a regex tokenizer, a score output
    in [0, 1] with a label file."""
    w = _Writer()
    input_tensor, output_tensor = _input_tensor(w, md), _output_tensor(w, md)
    inputs, outputs = w.offsets([input_tensor]), w.offsets([output_tensor])
    # table SubGraphMetadata { name, description, input_tensor_metadata, output_tensor_metadata, ... }
    subgraph = w.table([(2, "offset", inputs), (3, "offset", outputs)])
    subgraphs = w.offsets([subgraph])
    name, description, version = w.string(md.name), w.string(md.description), w.string(md.version)
    author, licence, parser = w.string(md.author), w.string(md.license), w.string(MIN_PARSER_VERSION)
    # table ModelMetadata { name, description, version, subgraph_metadata, author, license, associated_files, min_parser_version }
    root = w.table(
        [(0, "offset", name), (1, "offset", description), (2, "offset", version), (3, "offset", subgraphs), (4, "offset", author), (5, "offset", licence), (7, "offset", parser)]
    )
    w.b.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(w.b.Output())


def populate(model: bytes, metadata: bytes, files: dict[str, bytes]) -> bytes:
    """`model` with `metadata` in a buffer named TFLITE_METADATA (replacing one already there) and
    `files` appended as an uncompressed zip, as MetadataPopulator does; the zip's dates are fixed, so
    the same inputs give the same bytes."""
    out = io.BytesIO(with_metadata(model, METADATA_NAME, metadata))
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
        for file_name, content in files.items():
            info = zipfile.ZipInfo(file_name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return out.getvalue()


def with_metadata(model: bytes, name: str, data: bytes) -> bytes:
    """`model` with `data` in a new buffer listed in the model's metadata under `name` (replacing one of that name)."""
    from tensorflow.lite.python import schema_py_generated as schema

    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    buffer = schema.BufferT()
    buffer.data = list(data)
    tree.metadata = [m for m in (tree.metadata or []) if m.name != name.encode()]
    tree.buffers = [*(tree.buffers or []), buffer]
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(tree.buffers) - 1
    tree.metadata.append(entry)
    builder = flatbuffers.Builder(len(model) + len(data) + 1024)
    builder.Finish(tree.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def read_metadata(model: bytes) -> dict[str, object]:
    """The fields `metadata_buffer` writes, read back from a model file (for checks and tests)."""
    from flatbuffers.table import Table
    from tensorflow.lite.python import schema_py_generated as schema

    root = schema.Model.GetRootAsModel(model, 0)
    data = None
    for i in range(root.MetadataLength()):
        if root.Metadata(i).Name() == METADATA_NAME.encode():
            data = bytes(root.Buffers(root.Metadata(i).Buffer()).DataAsNumpy())
    if data is None:
        return {}
    if data[4:8] != FILE_IDENTIFIER:
        msg = f"metadata identifier {data[4:8]!r} is not {FILE_IDENTIFIER!r}"
        raise ValueError(msg)

    def field(tab: Table, slot: int) -> int:
        return tab.Offset(4 + 2 * slot)

    def text(tab: Table, slot: int) -> str | None:
        o = field(tab, slot)
        return tab.String(o + tab.Pos).decode("utf-8") if o else None

    def child(tab: Table, slot: int) -> Table:
        return Table(tab.Bytes, tab.Indirect(field(tab, slot) + tab.Pos))

    def items(tab: Table, slot: int) -> list[Table]:
        o = field(tab, slot)
        start, n = tab.Vector(o), tab.VectorLen(o)
        return [Table(tab.Bytes, tab.Indirect(start + 4 * i)) for i in range(n)]

    def byte(tab: Table, slot: int) -> int:
        o = field(tab, slot)
        return tab.Get(flatbuffers.number_types.Int8Flags, o + tab.Pos) if o else 0

    top = Table(data, flatbuffers.encode.Get(flatbuffers.packer.uoffset, data, 0))
    subgraph = items(top, 3)[0]
    input_tensor, output_tensor = items(subgraph, 2)[0], items(subgraph, 3)[0]
    unit = items(input_tensor, 4)[0]
    options = child(unit, 1)
    vocab = items(options, 1)[0]
    labels = items(output_tensor, 6)[0]
    return {
        "name": text(top, 0),
        "description": text(top, 1),
        "version": text(top, 2),
        "author": text(top, 4),
        "license": text(top, 5),
        "min_parser_version": text(top, 7),
        "input": text(input_tensor, 0),
        "process_unit": byte(unit, 0),
        "delim_regex_pattern": text(options, 0),
        "vocab_file": (text(vocab, 0), byte(vocab, 2)),
        "output": text(output_tensor, 0),
        "output_description": text(output_tensor, 1),
        "labels_file": (text(labels, 0), byte(labels, 2)),
    }


def associated_files(model: bytes) -> dict[str, bytes]:
    """The files zipped after the model."""
    with zipfile.ZipFile(io.BytesIO(model)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}
