"""Operations: the catalogue of conversions and other operations (``GET /v2/operations``)."""

from ...engine.schema import Column, Endpoint, Table
from ...values import BOOLEAN, INTEGER, JSON, TEXT

operations = Table(
    name="Operations",
    description="What CloudConvert can do: operation, input and output format, default engine and credits. Needs no API key.",
    columns=(
        Column("operation", TEXT, "Operation, e.g. convert, optimize, thumbnail.", primary_key=True, filter="filter[operation]"),
        Column("input_format", TEXT, "Input format (extension), e.g. docx.", primary_key=True, filter="filter[input_format]"),
        Column("output_format", TEXT, "Output format (extension), e.g. pdf.", primary_key=True, filter="filter[output_format]"),
        Column("engine", TEXT, "Engine used for this pair, e.g. office, ffmpeg.", primary_key=True, filter="filter[engine]"),
        Column("credits", INTEGER, "Base credits one conversion costs."),
        Column("meta_group", TEXT, "Format family of the output: image, document, audio, video, ...", path="meta.group"),
        Column("experimental", BOOLEAN, "Marked experimental by CloudConvert."),
        Column("deprecated", BOOLEAN, "Marked deprecated by CloudConvert."),
        Column("intermediate_format", TEXT, "For two-step conversions: the format in between."),
        Column("secondary_engine", TEXT, "For two-step conversions: the engine of the second step."),
        Column("note", TEXT, "Licence or usage note, when there is one."),
        Column("meta", JSON, "The entry's meta object (JSON)."),
        Column("options", JSON, "Options of this conversion (JSON array of {name, type, default, possible_values}).", include="options"),
        Column("engine_versions", JSON, "Available engine versions (JSON array).", include="engine_versions"),
    ),
    list=Endpoint("/operations"),
    estimated_rows=3000,
)
